"""Energy-diary trends for the progress page: how each day went, and what gives or costs energy.

The effort-recovery module asks the client to keep the energy diary for a week and then to
look back: what costs a lot, what gives energy, are there peaks and crashes? This reads the
client's diary responses (one per day) and answers those questions in figures: the day's
energy (0 to 10) over the days, the day's balance (the sum of the -5 … +5 marks of its
parts), and the activities that on average gave or cost the most.

Pure: QuestionnaireResponse JSON in, values for the template out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DIARY = "energy-diary"  # the questionnaire's id, the last part of its canonical url


@dataclass(frozen=True)
class DiaryDay:
    """One day of the diary."""

    date: str  # ISO date from the diary's own date question
    overall: int | None  # the day's energy, 0 to 10, if given
    balance: int  # the sum of the parts' marks (-5 … +5 each)
    parts: int


@dataclass(frozen=True)
class Activity:
    """An activity the client wrote down, with its average mark over the times it appears."""

    name: str
    average: float
    times: int


@dataclass(frozen=True)
class EnergyTrend:
    """The diary over the days: the days in date order, and what gives and costs energy."""

    days: tuple[DiaryDay, ...]
    gives: tuple[Activity, ...]  # highest average mark first, only marks above 0
    costs: tuple[Activity, ...]  # lowest average mark first, only marks below 0


def is_diary(questionnaire: str) -> bool:
    """Whether a canonical (``url|version``) names the energy diary."""
    return questionnaire.split("|", 1)[0].rstrip("/").endswith(f"/Questionnaire/{DIARY}")


def _answer(item: Mapping[str, Any]) -> Any:
    for answer in item.get("answer", []) or []:
        for key, value in answer.items():
            if key.startswith("value"):
                return value
    return None


def _day(response: Mapping[str, Any]) -> tuple[DiaryDay, list[tuple[str, int]]] | None:
    date, overall, marks = None, None, []
    for item in response.get("item", []) or []:
        link = item.get("linkId")
        if link == "energy-date":
            date = _answer(item)
        elif link == "energy-part":
            parts = {c.get("linkId"): _answer(c) for c in item.get("item", []) or []}
            activity, level = parts.get("energy-activity"), parts.get("energy-level")
            if isinstance(level, int) and not isinstance(level, bool):
                marks.append((str(activity or "").strip(), level))
        elif link == "energy-day-end":
            for child in item.get("item", []) or []:
                value = _answer(child)
                if child.get("linkId") == "energy-overall" and isinstance(value, int):
                    overall = value
    if not isinstance(date, str):
        return None
    day = DiaryDay(date, overall, sum(level for _, level in marks), len(marks))
    return day, marks


def energy_trend(responses: Iterable[Mapping[str, Any]], *, top: int = 3) -> EnergyTrend | None:
    """The trend over ``responses`` of the energy diary (None when there are none)."""
    days, marks_by_activity = [], defaultdict(list)
    names: dict[str, str] = {}
    for response in responses:
        found = _day(response)
        if found is None:
            continue
        day, marks = found
        days.append(day)
        for activity, level in marks:
            if activity:
                # "Wandelen" and "wandelen " are the same walk.
                same = " ".join(activity.lower().split())
                names.setdefault(same, activity)
                marks_by_activity[same].append(level)
    if not days:
        return None
    activities = [
        Activity(names[same], round(sum(levels) / len(levels), 1), len(levels))
        for same, levels in marks_by_activity.items()
    ]
    gives = sorted((a for a in activities if a.average > 0), key=lambda a: (-a.average, -a.times))
    costs = sorted((a for a in activities if a.average < 0), key=lambda a: (a.average, -a.times))
    return EnergyTrend(
        tuple(sorted(days, key=lambda d: d.date)), tuple(gives[:top]), tuple(costs[:top])
    )
