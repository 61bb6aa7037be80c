"""Koppeltaal 2.0: the edges of the programme for EHRs and portals that connect modules the
Koppeltaal way (``mode = "koppeltaal"`` in the config). Publishing as KT2 resources, the HTI
launch, Task status back, AuditEvents and trace headers live here; the programme, the pages,
the questionnaire engine and the outbox are shared with the SMART mode.
"""

from __future__ import annotations

from fhir_burnout.koppeltaal import _audit as audit
from fhir_burnout.koppeltaal._audit_outbox import queue_audit_event
from fhir_burnout.koppeltaal._backend import CONNECTION, DEFAULT_SCOPE
from fhir_burnout.koppeltaal._care import CareTeamUnreadableError, clients_of, record_launch
from fhir_burnout.koppeltaal._enrol import (
    KoppeltaalTaskError,
    Target,
    check_view_rule,
    find_task,
    instantiates,
    is_view,
    publisher_id,
    take_task,
    target_of,
)
from fhir_burnout.koppeltaal._launch import (
    ForeignDefinitionError,
    ForeignTaskError,
    HtiLaunch,
    HtiToken,
    KoppeltaalLaunchError,
    LaunchContextError,
    LaunchedTask,
    RelatedPersonLaunchError,
    ReplayedLaunchError,
    begin_hti_launch,
    complete_hti_launch,
    hti_launcher,
    hti_trace_id,
    koppeltaal_ehr,
    resolve_launch,
)
from fhir_burnout.koppeltaal._notify import (
    KOPPELTAAL_CHANNEL,
    KoppeltaalFeed,
    TaskPollResult,
    reconcile_tasks,
    subscribe_tasks,
)
from fhir_burnout.koppeltaal._outbox import KoppeltaalOutbox, deliver_for
from fhir_burnout.koppeltaal._plan import NOT_STARTED, queue_task_status
from fhir_burnout.koppeltaal._profiles import (
    canonical_base,
    kt2_activity_definitions,
    kt2_endpoint,
)
from fhir_burnout.koppeltaal._publish import NEW_ENDPOINT, KoppeltaalStep, publish_koppeltaal
from fhir_burnout.koppeltaal._replay import UsedLaunchToken, take_launch_token
from fhir_burnout.koppeltaal._results import RETENTION, RenderResults
from fhir_burnout.koppeltaal._retention import expire_results
from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow, ResultsDocumentRow
from fhir_burnout.koppeltaal._trace import TracedSession, TraceIds, from_headers, new_id, traced

__all__ = ["KoppeltaalTaskRow"]
__all__ += [  # K5: taking a portal's Task in
    "KoppeltaalTaskError", "Target", "check_view_rule", "find_task", "instantiates", "is_view",
    "publisher_id", "take_task", "target_of",
]  # fmt: skip
__all__ += [  # K5: status back through the outbox
    "KoppeltaalOutbox", "deliver_for", "queue_task_status",
]  # fmt: skip
__all__ += [  # polls: the koppeltaal-tasks feed of the skeleton's poller, its channel
    "KOPPELTAAL_CHANNEL", "KoppeltaalFeed", "TaskPollResult", "reconcile_tasks",
    "subscribe_tasks",
]  # fmt: skip
__all__ += [  # K4: the HTI launch
    "ForeignDefinitionError", "ForeignTaskError", "HtiLaunch", "KoppeltaalLaunchError",
    "LaunchContextError", "LaunchedTask", "begin_hti_launch", "complete_hti_launch",
    "hti_trace_id", "koppeltaal_ehr", "resolve_launch",
]  # fmt: skip
__all__ += [  # K3: publishing, backend tokens, trace headers (AuditEvents: koppeltaal.audit)
    "KoppeltaalStep", "TracedSession", "from_headers", "publish_koppeltaal", "traced",
]  # fmt: skip
__all__ += [  # imports18: for the CLI and web; ``audit``: the KT2_AuditEvent builders
    "NEW_ENDPOINT",
    "NOT_STARTED",
    "TraceIds",
    "audit",
    "canonical_base",
    "kt2_activity_definitions",
    "kt2_endpoint",
    "new_id",
]
__all__ += ["queue_audit_event"]  # ops18: an AuditEvent through the outbox, for the web too
__all__ += ["CONNECTION", "DEFAULT_SCOPE"]  # launch18: the pool's Koppeltaal connection
__all__ += [  # kt19care: whose clients a care professional sees on a domain
    "CareTeamUnreadableError", "clients_of", "hti_launcher", "record_launch",
]  # fmt: skip
__all__ += [  # kt19launch: one launch per HTI token, RelatedPerson launches refused
    "HtiToken", "RelatedPersonLaunchError", "ReplayedLaunchError", "UsedLaunchToken",
    "take_launch_token",
]  # fmt: skip
__all__ += [  # kt-results: the results document immutable per version, its retention
    "RETENTION", "RenderResults", "ResultsDocumentRow", "expire_results",
]  # fmt: skip
