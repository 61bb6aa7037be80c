"""Each package's public API is pinned: a change to __all__ is a deliberate change."""

from __future__ import annotations

import fhir_burnout
import fhir_burnout.db
import fhir_burnout.errors
import fhir_burnout.fhir
import fhir_burnout.integration
import fhir_burnout.koppeltaal
import fhir_burnout.questionnaire
import fhir_burnout.referral
import fhir_burnout.resources
import fhir_burnout.sandbox
import fhir_burnout.smart_launch
import fhir_burnout.sync
import fhir_burnout.web
import fhir_burnout.workflow


def test_public_api_is_pinned():
    assert fhir_burnout.__all__ == ["__version__"]
    assert sorted(fhir_burnout.errors.__all__) == [
        "ContentError", "FhirBurnoutError", "FhirConnectionError", "FhirServerError",
        "ForeignUrlError", "ValidationProblemsError",
    ]  # fmt: skip
    assert sorted(fhir_burnout.db.__all__) == [
        "Base", "DatabaseError", "create_db_engine", "current_revision", "head_revision",
        "is_postgresql", "reader", "upgrade", "upsert",
    ]  # fmt: skip
    assert sorted(fhir_burnout.fhir.__all__) == [
        "FhirClient", "FhirXmlError",
        "resource_from_xml", "resource_to_xml", "safe_xml_parser",
    ]  # fmt: skip
    assert sorted(fhir_burnout.resources.__all__) == [
        "Module", "Phase", "Problem", "Programme", "PublishStep", "Text", "Track",
        "WrittenPackage", "build_resources", "bundle_from_xml", "bundle_to_xml",
        "load_artifact", "load_programme", "load_questionnaire", "load_safety_rules",
        "plan_request", "publish", "read_package", "safe_xml_parser", "translations",
        "validate_artifact", "validate_sources", "write_package",
    ]  # fmt: skip
    assert sorted(fhir_burnout.questionnaire.__all__) == [
        "AnswerOption", "ClinicalChange", "EnableCondition", "Enablement", "FormItem",
        "FormModel", "QuestionnaireError", "ReliableChange", "SafetyRule", "Score", "Signal",
        "ValidationIssue", "answer_values", "answer_weights", "answers_by_link",
        "build_response", "clinical_change", "enabled_items", "enablement", "evaluate",
        "initial_answers", "load_form", "localized", "parse_safety_rules", "plain_number",
        "reliable_change", "safety_signals", "score", "validate", "with_scores",
    ]  # fmt: skip
    assert sorted(fhir_burnout.referral.__all__) == [
        "ACCEPTED", "AmbiguousPatientError", "BSN_MISMATCH", "Criterion", "DECLINED",
        "DECLINED_STATUS",
        "DeclineReason", "Intake", "LETTER_NAMESPACE", "LetterIdentifier",
        "LetterProblem", "MAX_DECLINE_NOTE", "MAX_LETTER_BYTES", "PatientMatch",
        "REFERRAL_CHANNEL", "REFERRAL_REASON",
        "ReferralDecidedError", "ReferralError", "ReferralFeed", "ReferralLetter",
        "ReferralLetterError", "ReferralNotFoundError", "ReferralRow",
        "ReferralSummary", "ReferredPatient", "Referrer", "TRIAGE",
        "TRIAGE_STATUS", "TriageContent", "TriageError", "WAITING_LIST", "WAITING_LIST_STATUS",
        "accept_referral", "current_enrolment", "decline_referral",
        "existing_patient", "find_referral", "letter_to_fhir", "load_triage",
        "match_or_create_patient",
        "read_referral_letter", "reconcile", "referral_criteria", "referral_identifier",
        "referral_key", "referral_patient", "report_to_referrer", "search_token", "status_key",
        "subscribe_referrals",
        "subscription_criteria", "summarise", "take_referral", "valid_bsn",
        "waiting_for_triage",
    ]  # fmt: skip
    assert fhir_burnout.sandbox.__all__ == [
        "SandboxError", "SandboxInfo", "SandboxProcess", "sandbox_command", "start_sandbox",
    ]  # fmt: skip
    assert sorted(fhir_burnout.smart_launch.__all__) == [
        "ASSERTION_TYPE", "AccessToken", "AccessTokenError", "AuthMethod",
        "AuthorizationDeniedError", "BackendTokenSource", "CodeExchange", "DiscoveryCache",
        "DiscoveryError", "ID_TOKEN_NONCES", "IdTokenError", "IdTokenNonce",
        "InsufficientScopeError", "IntegrationMode", "LaunchClient", "LaunchError",
        "LaunchResult", "MODES", "PendingLaunch", "ROLES", "Role", "ScopeRequest", "Signing",
        "SmartConfiguration", "StateError", "TokenKind", "TokenRequestError",
        "UntrustedIssuerError", "assertion_algorithm", "authorization_request", "backend_token",
        "backend_token_source",
        "begin_launch", "client_assertion", "complete_launch", "covers", "current_private_key",
        "discover", "exchange_code", "fetch_jwks", "generate_key",
        "jwt_header", "launch_scopes", "missing_purposes", "post_token_request",
        "probe_client_authentication", "public_jwks", "refresh", "require_scope",
        "revocation_endpoint", "revoke", "role_scopes", "trusted_ehr", "verify_access_token",
        "verify_id_token", "with_kid", "worker_scopes",
    ]  # fmt: skip
    assert sorted(fhir_burnout.sync.__all__) == [
        "Agent", "Backoff", "Blocked", "Claimed", "Create", "DeliveredResource", "KEY_SYSTEM",
        "KoppeltaalResults", "KoppeltaalTaskStatus",
        "NoAuthorisationError", "Operation", "OperationError",
        "OutboxEntry", "OutboxError", "OutboxEvent", "Outcome",
        "QueueStatus", "Retries", "UpdateCarePlan", "UpdateTask", "WAITING",
        "Worker", "WriteAccess",
        "blocked_entries", "caused_by", "claim", "enqueue", "error_kind", "key_identifier",
        "key_reference", "moves_forward", "operation_from_json", "operations_of",
        "queue_status", "requeue", "set_cause",
    ]  # fmt: skip
    assert sorted(fhir_burnout.workflow.__all__) == sorted([
            "Actor", "Application", "CURRENT", "ClientProgramme", "Definitions", "DraftRow",
            "EndingReason", "EnrolmentRow", "EnrolmentStateError", "FILTERS", "InvitationRow",
            "MAX_NOTE", "MODULE_STATES", "MeasureView", "ModuleEntry", "Moment", "NotFoundError",
            "NoteRow", "OutcomeCounts", "PatientOverview", "PhaseEntry", "PhaseRow",
            "PhaseState", "PhaseView", "PlanError", "PracticeOverview", "PracticeRow",
            "ProgrammeMap", "ProgrammeView", "Progress", "ResponseRow", "SORTS", "STUCK_AFTER",
            "TRANSITIONS", "TaskChangedError", "TaskRow", "TaskState",
            "TaskTransitionError", "TaskView", "ToDo", "UnknownEndingReasonError",
            "accept_invitation", "add_note", "add_response", "adopt_lock", "advance",
            "alert_care_professional", "apply_plan", "change_task", "check_transition",
            "client_programme", "end_measures", "ending_reason", "ending_reasons",
            "ending_told", "enrol", "expect", "extend_measures", "finish", "invite",
            "load_draft", "lock_task", "measure_views", "normalise_code", "notes_for",
            "partition", "patient_overview", "pause", "practice_outcomes", "practice_overview",
            "previous_scores", "programme_views", "queue_writes", "remember_place", "resume",
            "save_draft", "shown_count", "stop", "submit_response", "switch_track",
            "unlock_phase", "work_list",
            # issue 21: feedback both ways, a thread per homework answer (workflow._threads)
            "MAX_MESSAGE", "Message", "MessageError", "Thread", "ThreadMessageRow",
            "answer_title", "homework_answers", "mark_seen", "new_responses", "own_answer",
            "post_message", "readable_answer", "thread_of", "threads_of",
            # issue 21: "Sinds de vorige sessie" (workflow._summary, _visits, _readable)
            "Answer", "CheckIn", "LookBack", "MeasureChange", "ResponseOverview",
            "SessionSummary", "VisitRow", "last_visit", "queue_summary_document",
            "record_visit", "session_summary",
        ])  # fmt: skip
    assert sorted(fhir_burnout.koppeltaal.__all__) == [
        "CONNECTION", "CareTeamUnreadableError", "DEFAULT_SCOPE", "ForeignDefinitionError",
        "ForeignTaskError", "HtiLaunch", "HtiToken", "KOPPELTAAL_CHANNEL", "KoppeltaalFeed",
        "KoppeltaalLaunchError", "KoppeltaalOutbox", "KoppeltaalStep", "KoppeltaalTaskError",
        "KoppeltaalTaskRow", "LaunchContextError", "LaunchedTask", "NEW_ENDPOINT", "NOT_STARTED",
        "RETENTION", "RelatedPersonLaunchError", "RenderResults", "ReplayedLaunchError",
        "ResultsDocumentRow", "Target", "TaskPollResult",
        "TraceIds", "TracedSession", "UsedLaunchToken", "audit", "begin_hti_launch",
        "canonical_base", "check_view_rule", "clients_of", "complete_hti_launch", "deliver_for",
        "expire_results", "find_task", "from_headers", "hti_launcher", "hti_trace_id",
        "instantiates", "is_view",
        "koppeltaal_ehr", "kt2_activity_definitions", "kt2_endpoint", "new_id",
        "publish_koppeltaal", "publisher_id", "queue_audit_event", "queue_task_status",
        "reconcile_tasks", "record_launch", "resolve_launch", "subscribe_tasks",
        "take_launch_token", "take_task", "target_of", "traced",
    ]  # fmt: skip
    # the integration skeleton: its client pool, and its poller, feeds, channels, subscribe
    assert sorted(fhir_burnout.integration.__all__) == [
        "Channel", "Connection", "DEFAULT_INTERVAL", "EhrClients", "Feed", "KOPPELTAAL_TASKS",
        "PollOutcome", "PollResult", "PollRow", "Poller", "REFERRALS", "SessionTokens",
        "Subscribed", "Watched", "backend_client", "changed_since", "channel_id", "poll_row",
        "subscribe", "want_poll", "watched",
    ]  # fmt: skip
    assert sorted(fhir_burnout.web.__all__) == [
        "SessionStore", "SessionTokens", "create_app", "purge", "results_renderer", "translate",
    ]  # fmt: skip
    modules = (
        fhir_burnout.web,
        fhir_burnout.db, fhir_burnout.errors, fhir_burnout.fhir, fhir_burnout.integration,
        fhir_burnout.koppeltaal,
        fhir_burnout.resources,
        fhir_burnout.questionnaire, fhir_burnout.referral, fhir_burnout.sandbox,
        fhir_burnout.smart_launch, fhir_burnout.sync, fhir_burnout.workflow,
    )  # fmt: skip
    for module in modules:
        for name in module.__all__:
            assert hasattr(module, name)


def test_every_error_renders_as_an_operation_outcome():
    error = fhir_burnout.errors.ContentError("content/x.md", "line 3", "bad")
    assert isinstance(error, ValueError)
    outcome = error.outcome()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0] == {
        "severity": "error",
        "code": "invalid",
        "diagnostics": "content/x.md: line 3: bad",
    }
    server = fhir_burnout.errors.FhirServerError(
        "PUT x answered 412",
        status=412,
        outcome={
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "conflict", "diagnostics": "version mismatch"}
            ],
        },
    )
    assert server.outcome()["issue"][0]["code"] == "conflict"
    assert "version mismatch" in str(server)
