"""A client with eight weeks behind them, for the care professional's "Sinds de vorige
sessie" (issue 21): fixed answers on fixed days, played through the demo's history player
(``fhir_burnout._demo_history.play``: the same workflow functions as the pages), so the
figures a test expects can be worked out by hand from this file.

Enrolled 56 days before ``today`` in the standard track; the last session was on day 42
(:data:`LAST_SESSION`), so the period "since the last session" holds days 42 to 56.

=====  ======================================================================================
day    what
=====  ======================================================================================
0      PHQ-9 17 (2,2,2,3,2,2,2,2,0), GAD-7 13 (2,2,2,2,2,2,1), WHO-5 raw 6 = 24 % (1,1,2,1,1),
       CBI; check-in: energy 2, sleep very poor, tension 8
1-50   the five modules of phase 1 (understanding-burnout 3, body-signals 11,
       tension-relaxation 18, effort-recovery 45, rhythm-self-care 50)
7-35   check-ins: (3, poor, 7), (3, poor, 7), (2, very poor, 8), (4, fair, 6), (4, poor, 6)
5, 12  look-backs: body scan 7 -> 5, paced breathing 8 -> 5
42     check-in (5, fair, 5) "Ik zei nee tegen een extra klus."
43     energy diary: morning "Werkmail lezen" -4, evening "Wandelen met de hond" +3, the day 4,
       "Na het wandelen sliep ik beter."
44     look-back: paced breathing 7 -> 4, "Mijn schouders werden zachter."
48     look-back: mindful walk 6 -> 3, "Even niet gepiekerd."
49     check-in (6, good, 4) "Met een vriend koffie gedronken."
51     end of phase 1: PHQ-9 8 (1,1,1,1,1,1,1,1,0), GAD-7 10 (2,2,1,2,1,1,1),
       WHO-5 raw 12 = 48 % (2,3,2,2,3)
=====  ======================================================================================
"""

from __future__ import annotations

from datetime import date, timedelta

from fhir_burnout._demo_history import (
    Event,
    History,
    _cbi,
    _checkin,
    _diary,
    _look_back,
    _open_and_done,
    _scored,
    _who5,
    play,
)
from fhir_burnout.web._session_summary import start_of

DAYS = 56
LAST_SESSION = 42

_E = Event


def eight_weeks(patient: str) -> History:
    """The history above, for ``patient``."""
    diary = _diary(43, [("morning", "Werkmail lezen", -4),
                        ("evening", "Wandelen met de hond", 3)], 4)  # fmt: skip
    diary["energy-reflection"] = "Na het wandelen sliep ik beter."
    return History(patient, "standard", DAYS, (
        _E(0, 20, "answer", "phq-9.start", _scored("phq9", 2, 2, 2, 3, 2, 2, 2, 2, 0)),
        _E(0, 20, "answer", "gad-7.start", _scored("gad7", 2, 2, 2, 2, 2, 2, 1)),
        _E(0, 20, "answer", "who-5.start", _who5(1, 1, 2, 1, 1)),
        _E(0, 20, "answer", "cbi.start", _cbi(2, 2, 2, 3, 2, 3, 2, 2, 3, 2, 2, 3, 2)),
        _E(0, 21, "answer", "weekly-checkin.weekly", _checkin(2, "very-poor", 8)),
        *_open_and_done("understanding-burnout", 1, 3),
        _E(4, 19, "open", "body-signals"),
        _E(5, 21, "look-back", "body-signals",
           _look_back("body-scan", 7, 5, "Mijn schouders zakten.", "yes")),
        _E(7, 20, "answer", "weekly-checkin.weekly",
           _checkin(3, "poor", 7, "Elke dag een kort stukje gewandeld.")),
        _E(11, 21, "done", "body-signals"),
        _E(12, 19, "open", "tension-relaxation"),
        _E(12, 21, "look-back", "tension-relaxation",
           _look_back("paced-breathing", 8, 5, "Rustiger na een paar minuten.", "yes")),
        _E(14, 20, "answer", "weekly-checkin.weekly", _checkin(3, "poor", 7)),
        _E(18, 21, "done", "tension-relaxation"),
        _E(19, 19, "open", "effort-recovery"),
        _E(21, 20, "answer", "weekly-checkin.weekly", _checkin(2, "very-poor", 8)),
        _E(28, 20, "answer", "weekly-checkin.weekly",
           _checkin(4, "fair", 6, "Een middag in de tuin gewerkt.")),
        _E(35, 20, "answer", "weekly-checkin.weekly", _checkin(4, "poor", 6)),
        # --- the period since the last session (day 42) ---
        _E(42, 20, "answer", "weekly-checkin.weekly",
           _checkin(5, "fair", 5, "Ik zei nee tegen een extra klus.")),
        _E(43, 21, "answer", "effort-recovery.energy-diary", diary),
        _E(44, 21, "look-back", "tension-relaxation",
           _look_back("paced-breathing", 7, 4, "Mijn schouders werden zachter.", "yes")),
        _E(45, 21, "done", "effort-recovery"),
        _E(46, 19, "open", "rhythm-self-care"),
        _E(48, 21, "look-back", "rhythm-self-care",
           _look_back("mindful-walk", 6, 3, "Even niet gepiekerd.", "yes")),
        _E(49, 20, "answer", "weekly-checkin.weekly",
           _checkin(6, "good", 4, "Met een vriend koffie gedronken.")),
        _E(50, 21, "done", "rhythm-self-care"),
        _E(51, 20, "answer", "phq-9.end-recovery", _scored("phq9", 1, 1, 1, 1, 1, 1, 1, 1, 0)),
        _E(51, 20, "answer", "gad-7.end-recovery", _scored("gad7", 2, 2, 1, 2, 1, 1, 1)),
        _E(51, 20, "answer", "who-5.end-recovery", _who5(2, 3, 2, 2, 3)),
    ))  # fmt: skip


def seed(db, definitions, *, fhir_base, patient, today):
    """Play the eight weeks for ``patient`` in the caller's transaction; the enrolment's
    key and the start of the last session's day (the period's start)."""
    played = play(db, definitions, eight_weeks(patient), fhir_base=fhir_base, today=today)
    return played.enrolment, start_of(today - timedelta(days=DAYS - LAST_SESSION))


def day_of(today: date, day: int) -> date:
    """Day ``day`` of the history, as a date."""
    return today - timedelta(days=DAYS - day)
