"""Enrolment (PlanDefinition $apply), the Task state machine, progress and phase unlocking."""
