"""The durable outbox, the worker that delivers it, idempotency keys, conflict handling.

Every write for the EHR is an outbox entry committed with the change that caused it
(:func:`enqueue`); :class:`Worker` delivers entries as transaction Bundles, exactly once in
effect: each resource carries its write's key as an identifier and is created
conditionally, Task updates use If-Match, and a Provenance records who wrote what.
"""

from __future__ import annotations

from fhir_burnout.sync._bundle import (
    KEY_SYSTEM,
    key_identifier,
    key_reference,
    moves_forward,
)
from fhir_burnout.sync._operations import (
    Create,
    KoppeltaalResults,
    KoppeltaalTaskStatus,
    Operation,
    OperationError,
    UpdateCarePlan,
    UpdateTask,
    operation_from_json,
    operations_of,
)
from fhir_burnout.sync._outbox import (
    WAITING,
    Agent,
    Blocked,
    Claimed,
    OutboxError,
    QueueStatus,
    blocked_entries,
    caused_by,
    claim,
    enqueue,
    queue_status,
    requeue,
    set_cause,
)
from fhir_burnout.sync._retries import Retries, error_kind
from fhir_burnout.sync._tables import DeliveredResource, OutboxEntry, OutboxEvent
from fhir_burnout.sync._worker import Backoff, NoAuthorisationError, Outcome, Worker, WriteAccess

__all__ = [  # ops18: the typed outbox operations (sync._operations)
    "Create", "KoppeltaalResults", "KoppeltaalTaskStatus", "Operation", "OperationError",
    "UpdateCarePlan", "UpdateTask", "operation_from_json", "operations_of",
]  # fmt: skip
__all__ += [
    "KEY_SYSTEM",
    "WAITING",
    "Agent",
    "Backoff",
    "Blocked",
    "DeliveredResource",
    "NoAuthorisationError",
    "OutboxEntry",
    "OutboxError",
    "OutboxEvent",
    "Outcome",
    "QueueStatus",
    "Retries",
    "Worker",
    "WriteAccess",
    "blocked_entries",
    "caused_by",
    "claim",
    "enqueue",
    "error_kind",
    "key_identifier",
    "key_reference",
    "moves_forward",
    "queue_status",
    "requeue",
    "set_cause",
]
__all__ += ["Claimed"]  # launch18: what integration.EhrClients.access reads of an entry
