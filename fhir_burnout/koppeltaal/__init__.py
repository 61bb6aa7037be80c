"""Koppeltaal 2.0: the edges of the programme for EHRs and portals that connect modules the
Koppeltaal way (``mode = "koppeltaal"`` in the config). Publishing as KT2 resources, the HTI
launch, Task status back, AuditEvents and trace headers live here; the programme, the pages,
the questionnaire engine and the outbox are shared with the SMART mode.
"""

from __future__ import annotations

from fhir_burnout.koppeltaal._tables import KoppeltaalTaskRow

__all__ = ["KoppeltaalTaskRow"]
