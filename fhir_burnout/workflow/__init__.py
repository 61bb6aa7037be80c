"""Enrolment (PlanDefinition $apply), the Task state machine, progress and phase unlocking.

The programme's state is local and ours (it survives an EHR outage); every change also
queues its writes for the EHR in the outbox (``fhir_burnout.sync``), in the same
transaction. Functions take the caller's SQLAlchemy session; the caller commits.
"""

from __future__ import annotations

from fhir_burnout.workflow._answers import add_response, load_draft, save_draft, submit_response
from fhir_burnout.workflow._apply import Application, PlanError, apply_plan
from fhir_burnout.workflow._changes import change_task, unlock_phase
from fhir_burnout.workflow._definitions import Definitions
from fhir_burnout.workflow._endings import (
    EndingReason,
    MeasureView,
    UnknownEndingReasonError,
    end_measures,
    ending_reason,
    ending_reasons,
    ending_told,
    extend_measures,
    measure_views,
)
from fhir_burnout.workflow._enrolment import enrol
from fhir_burnout.workflow._errors import EnrolmentStateError, NotFoundError, TaskChangedError
from fhir_burnout.workflow._invitations import accept_invitation, invite, normalise_code
from fhir_burnout.workflow._locks import adopt_lock, expect, lock_task
from fhir_burnout.workflow._map import (
    MODULE_STATES,
    ClientProgramme,
    ModuleEntry,
    Moment,
    PhaseEntry,
    ProgrammeMap,
    ToDo,
    client_programme,
)
from fhir_burnout.workflow._outbox import partition, queue_writes
from fhir_burnout.workflow._outcomes import OutcomeCounts, practice_outcomes, shown_count
from fhir_burnout.workflow._overview import PatientOverview, patient_overview
from fhir_burnout.workflow._pausing import finish, pause, resume, stop
from fhir_burnout.workflow._places import remember_place
from fhir_burnout.workflow._practice import (
    FILTERS,
    SORTS,
    STUCK_AFTER,
    PracticeOverview,
    PracticeRow,
    practice_overview,
    work_list,
)
from fhir_burnout.workflow._practitioner_tasks import alert_care_professional
from fhir_burnout.workflow._progress import PhaseState, Progress, TaskState, advance
from fhir_burnout.workflow._readable import Answer, ResponseOverview
from fhir_burnout.workflow._safety import previous_scores
from fhir_burnout.workflow._states import TRANSITIONS, Actor, TaskTransitionError, check_transition
from fhir_burnout.workflow._summary import (
    CheckIn,
    LookBack,
    MeasureChange,
    SessionSummary,
    session_summary,
)
from fhir_burnout.workflow._summary_document import queue_summary_document
from fhir_burnout.workflow._switching import MAX_NOTE, add_note, notes_for, switch_track
from fhir_burnout.workflow._tables import (
    CURRENT,
    DraftRow,
    EnrolmentRow,
    InvitationRow,
    NoteRow,
    PhaseRow,
    ResponseRow,
    TaskRow,
    ThreadMessageRow,
)
from fhir_burnout.workflow._threads import (
    MAX_MESSAGE,
    Message,
    MessageError,
    Thread,
    answer_title,
    homework_answers,
    mark_seen,
    new_responses,
    own_answer,
    post_message,
    readable_answer,
    thread_of,
    threads_of,
)
from fhir_burnout.workflow._view import PhaseView, ProgrammeView, TaskView, programme_views
from fhir_burnout.workflow._visits import VisitRow, last_visit, record_visit

__all__ = [
    "MAX_NOTE",
    "STUCK_AFTER",
    "TRANSITIONS",
    "Actor",
    "Application",
    "Definitions",
    "DraftRow",
    "EndingReason",
    "EnrolmentRow",
    "EnrolmentStateError",
    "InvitationRow",
    "MeasureView",
    "NotFoundError",
    "NoteRow",
    "PatientOverview",
    "PhaseRow",
    "PhaseState",
    "PhaseView",
    "PlanError",
    "PracticeOverview",
    "ProgrammeView",
    "Progress",
    "ResponseRow",
    "TaskChangedError",
    "TaskRow",
    "TaskState",
    "TaskTransitionError",
    "TaskView",
    "UnknownEndingReasonError",
    "accept_invitation",
    "add_note",
    "add_response",
    "adopt_lock",
    "advance",
    "alert_care_professional",
    "apply_plan",
    "change_task",
    "check_transition",
    "end_measures",
    "ending_reason",
    "ending_reasons",
    "ending_told",
    "enrol",
    "expect",
    "extend_measures",
    "finish",
    "invite",
    "load_draft",
    "lock_task",
    "measure_views",
    "normalise_code",
    "notes_for",
    "partition",
    "patient_overview",
    "pause",
    "practice_overview",
    "previous_scores",
    "programme_views",
    "queue_writes",
    "remember_place",
    "resume",
    "save_draft",
    "stop",
    "submit_response",
    "switch_track",
    "unlock_phase",
]
__all__ += [  # imports18: referral's intake
    "CURRENT",
]
__all__ += [  # issue 20: the client's programme map and week (web/_programme_pages.py)
    "MODULE_STATES",
    "ClientProgramme",
    "ModuleEntry",
    "Moment",
    "PhaseEntry",
    "ProgrammeMap",
    "ToDo",
    "client_programme",
]
__all__ += [  # issue 21: /practice as a work list, with the practice's outcomes
    "FILTERS",
    "SORTS",
    "OutcomeCounts",
    "PracticeRow",
    "practice_outcomes",
    "shown_count",
    "work_list",
]
__all__ += [  # issue 21: feedback both ways, a thread per homework answer (_threads)
    "MAX_MESSAGE",
    "Message",
    "MessageError",
    "Thread",
    "ThreadMessageRow",
    "answer_title",
    "homework_answers",
    "mark_seen",
    "new_responses",
    "own_answer",
    "post_message",
    "readable_answer",
    "thread_of",
    "threads_of",
]
__all__ += [  # issue 21: "Sinds de vorige sessie" (web/_practitioner_pages.py)
    "Answer",
    "CheckIn",
    "LookBack",
    "MeasureChange",
    "ResponseOverview",
    "SessionSummary",
    "VisitRow",
    "last_visit",
    "queue_summary_document",
    "record_visit",
    "session_summary",
]
