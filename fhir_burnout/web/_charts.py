"""Charts as server-rendered SVG: readings on a time axis spaced by date, a y axis on the
measure's own range with tick labels, and the measure's bands behind the readings.

Pure: values in, viewBox coordinates and labels out; ``_chart.html`` draws them, so the
page needs no script. Numbers and dates in the page's language through Babel (a decimal
comma in Dutch, a point in English).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from babel.dates import format_date as babel_date
from babel.numbers import format_decimal

#: The viewBox; the page scales it to the column's width (static/progress.css).
WIDTH, HEIGHT = 320, 140  # wide and low: eleven of them follow the summary on a phone
TOP, RIGHT, BOTTOM = 12, 12, 30  # room above, right of and below the plot (the dates)
KEY = 18  # more room above a chart of before -> after pairs: its key to the two marks
INSET = 10  # the first and last reading stand this far inside the plot, off the axis
CHAR = 6.6  # about the width of one character of a 12-unit label, for the y axis' room
NICE_STEPS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000)
MAX_TICKS = 7


@dataclass(frozen=True)
class Reading:
    """One value on one day; ``after`` makes it a before -> after pair (tension before and
    after an exercise)."""

    day: date
    value: float
    after: float | None = None


@dataclass(frozen=True)
class Band:
    """A range of the measure with its name for the client (a questionnaire's score-band)."""

    low: float
    high: float | None  # None: up to the top of the scale
    label: str


@dataclass(frozen=True)
class Scale:
    """The measure's own range; ``names`` are a choice's answers, lowest first, one tick each
    instead of numbers (sleep: very badly … well)."""

    low: float
    high: float
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tick:
    """A place on an axis (x or y in the viewBox) and its label."""

    at: float
    label: str


@dataclass(frozen=True)
class Dot:
    """A reading drawn: its place, its day (ISO) and where its ``after`` is, if any."""

    x: float
    y: float
    day: str
    after_y: float | None = None


@dataclass(frozen=True)
class Stripe:
    """A band drawn: from ``y`` down ``height``, its label, its range and its shade (0, 1,
    …: lighter to darker, calm tints of one colour)."""

    y: float
    height: float
    label: str
    range: str
    shade: int


@dataclass(frozen=True)
class Chart:
    """Everything the template draws, in viewBox units."""

    width: float
    height: float
    left: float
    top: float
    right: float
    bottom: float
    dots: tuple[Dot, ...]
    line: str  # polyline points joining single readings in time order; "" for pairs
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    stripes: tuple[Stripe, ...]

    @property
    def pairs(self) -> bool:
        """Whether it draws before -> after pairs (and so needs a key for the two marks)."""
        return any(d.after_y is not None for d in self.dots)


def number(value: float, lang: str) -> str:
    """A value the way people in ``lang`` write it: at most one decimal, 6,5 in Dutch."""
    return str(format_decimal(value, format="#,##0.#", locale=lang))


def short_day(day: date, lang: str) -> str:
    """A day for an axis: 3 sep. in Dutch, 3 Sept in English."""
    return str(babel_date(day, "d MMM", locale=lang))


def _step(span: float) -> float:
    """The smallest round step that gives at most ``MAX_TICKS`` ticks over ``span``."""
    for step in NICE_STEPS:
        if span / step <= MAX_TICKS - 1:
            return float(step)
    return float(10 ** math.ceil(math.log10(span)))


def _y_values(scale: Scale) -> list[tuple[float, str | None]]:
    if scale.names:
        return [(scale.low + i, name) for i, name in enumerate(scale.names)]
    step = _step(scale.high - scale.low)
    values = [scale.low]
    at = math.floor(scale.low / step) * step + step
    # The top of the range is always labelled (27 for the PHQ-9); a round tick close
    # under it (25) would crowd it.
    while at < scale.high - step / 2:
        values.append(at)
        at += step
    return [(v, None) for v in [*values, scale.high]]


def _x_days(first: date, span: int) -> list[date]:
    """Days for the time axis, a whole number of days apart and at most five: the first,
    every ``step`` days, and the last (in place of a tick that would crowd it)."""
    if span == 0:
        return [first]
    step = math.ceil(span / 4)
    offsets = list(range(0, span, step))
    if len(offsets) > 1 and span - offsets[-1] < step * 0.75:
        offsets.pop()
    return [first + timedelta(days=d) for d in [*offsets, span]]


class _Y:
    """Maps a value on ``scale`` to a y in the viewBox (the top of the range at the top)."""

    def __init__(self, scale: Scale, top: float, bottom: float) -> None:
        self.scale, self.top, self.bottom = scale, top, bottom

    def __call__(self, value: float) -> float:
        span = (self.scale.high - self.scale.low) or 1.0
        share = (value - self.scale.low) / span
        return round(self.bottom - share * (self.bottom - self.top), 1)


def _stripes(bands: Sequence[Band], scale: Scale, y: _Y, lang: str) -> tuple[Stripe, ...]:
    ordered = sorted(bands, key=lambda b: b.low)
    stripes, lower = [], scale.low
    for i, band in enumerate(ordered):
        following = ordered[i + 1] if i + 1 < len(ordered) else None
        if following is None:
            upper = scale.high
        elif band.high is not None:  # whole-number bands (0-28, 29-50): they meet halfway
            upper = (band.high + following.low) / 2
        else:
            upper = following.low
        top_value = band.high if band.high is not None and following else scale.high
        text = f"{number(band.low, lang)}\N{EN DASH}{number(top_value, lang)}"
        stripes.append(Stripe(y(upper), round(y(lower) - y(upper), 1), band.label, text, i))
        lower = upper
    return tuple(stripes)


def draw(
    readings: Sequence[Reading],
    scale: Scale,
    *,
    lang: str,
    bands: Sequence[Band] = (),
    joined: bool = True,
) -> Chart:
    """The chart of ``readings`` (oldest first) on ``scale``, spaced by date; ``joined``
    draws a line through single readings. A reading outside the scale widens it rather
    than leave the chart."""
    values = [v for r in readings for v in (r.value, r.after) if v is not None]
    if values and not scale.names:
        scale = Scale(min(scale.low, *values), max(scale.high, *values))
    y_values = _y_values(scale)
    labels = [label or number(value, lang) for value, label in y_values]
    left = max(28.0, round(CHAR * max(len(label) for label in labels) + 10, 1))
    right, bottom = WIDTH - RIGHT, HEIGHT - BOTTOM
    top = TOP + KEY if any(r.after is not None for r in readings) else TOP
    y = _Y(scale, top, bottom)
    days = sorted(r.day for r in readings)
    first = days[0] if days else date.today()
    span = (days[-1] - first).days if days else 0

    def x(day: date) -> float:
        if span == 0:
            return round((left + right) / 2, 1)
        share = (day - first).days / span
        return round(left + INSET + share * (right - left - 2 * INSET), 1)

    dots = tuple(
        Dot(x(r.day), y(r.value), r.day.isoformat(), y(r.after) if r.after is not None else None)
        for r in sorted(readings, key=lambda r: r.day)
    )
    single = all(d.after_y is None for d in dots)
    line = " ".join(f"{d.x},{d.y}" for d in dots) if joined and single and len(dots) > 1 else ""
    return Chart(
        WIDTH,
        HEIGHT,
        left,
        top,
        right,
        bottom,
        dots,
        line,
        tuple(Tick(x(day), short_day(day, lang)) for day in _x_days(first, span)),
        tuple(Tick(y(value), label) for (value, _), label in zip(y_values, labels, strict=True)),
        _stripes(bands, scale, y, lang),
    )
