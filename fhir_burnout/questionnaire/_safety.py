"""The safety rules engine: which answers and scores of a response raise a signal.

The rules are data (``content/safety-rules.yaml``, read by ``resources.load_safety_rules``);
this module parses them and evaluates them on a Questionnaire, its QuestionnaireResponse,
the response's scores and the client's previous scores. It is pure: no Flask, no database,
no network. Standard instruments are found by their codes (PHQ-9 item 9 is LOINC 44260-8)
as well as by our own linkIds, so a PHQ-9 another system wrote raises the same signal.

Three kinds of rule:

- ``answer``: an item is answered with anything not listed in ``unless``;
- ``score``: a score is ``at_least`` / ``at_most`` a threshold;
- ``deterioration``: a score changed reliably for the worse since the client's previous
  score on it (Jacobson-Truax, ``_change.reliable_change``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from fhir_burnout.questionnaire._change import reliable_change

Kind = Literal["answer", "score", "deterioration"]
Priority = Literal["urgent", "routine"]
KINDS: tuple[Kind, ...] = ("answer", "score", "deterioration")
PRIORITIES: tuple[Priority, ...] = ("urgent", "routine")


@dataclass(frozen=True)
class ItemSelector:
    """Which item a rule looks at: by its code (``system|code``, in any questionnaire) or by
    a linkId in one questionnaire (its canonical url, without version)."""

    code: str | None = None
    questionnaire: str | None = None
    link_id: str | None = None

    def matches(self, url: str | None, item: Mapping[str, Any]) -> bool:
        """Whether ``item`` of the questionnaire at ``url`` is the one meant."""
        if self.code is not None:
            return self.code in {_coding_key(c) for c in item.get("code", []) or []}
        return self.link_id == item.get("linkId") and self.questionnaire == url


@dataclass(frozen=True)
class SafetyRule:
    """One safety rule, as the content states it (see ``content/safety-rules.yaml``)."""

    id: str
    title: Mapping[str, str]  # language -> what the care professional reads
    kind: Kind
    items: tuple[ItemSelector, ...]
    priority: Priority
    client_text: str  # i18n key of what the client sees
    source: str  # the citation the rule rests on
    unless: frozenset[str] = frozenset()  # answer: codings (system|code) that are fine
    at_least: float | None = None  # score
    at_most: float | None = None  # score

    def condition(self) -> str:
        """The rule's condition in words, for the clinical-safety document."""
        if self.kind == "answer":
            return "any answer except " + ", ".join(sorted(self.unless))
        if self.kind == "deterioration":
            return "reliable change (Jacobson-Truax) for the worse since the previous score"
        parts = [f">= {_number(self.at_least)}"] if self.at_least is not None else []
        parts += [f"<= {_number(self.at_most)}"] if self.at_most is not None else []
        return "score " + " and ".join(parts)

    def looks_at(self) -> str:
        """The items the rule looks at, in words."""
        return "; ".join(
            s.code if s.code else f"{s.link_id} in {s.questionnaire}" for s in self.items
        )


@dataclass(frozen=True)
class Signal:
    """A rule that fired on a response: what raised it, for the Task and the client."""

    rule: SafetyRule
    link_id: str  # the item (answer) or calculated item (score) that raised it
    item_text: str  # its text as the questionnaire words it
    evidence: str  # the answer's display, the score, or "before -> after"

    @property
    def priority(self) -> Priority:
        """urgent (contact today) or routine (review before or at the next contact)."""
        return self.rule.priority


def _number(value: float | None) -> str:
    return f"{value:g}" if value is not None else ""


def _coding_key(coding: Mapping[str, Any]) -> str:
    return f"{coding.get('system', '')}|{coding.get('code', '')}"


# --- parsing the rules --------------------------------------------------------------------


def parse_safety_rules(
    data: Any, canonical: str
) -> tuple[tuple[SafetyRule, ...], list[tuple[str, str]]]:
    """The rules in ``data`` (the parsed YAML), with ``{canonical}`` filled in, and the
    problems found as (location, message): a broken rule is left out and reported, so that
    validation names every problem at once."""
    problems: list[tuple[str, str]] = []
    raw_rules = data.get("rules") if isinstance(data, Mapping) else None
    if not isinstance(raw_rules, list) or not raw_rules:
        return (), [("rules", "must be a non-empty list of rules")]
    rules: list[SafetyRule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        where = f"rules[{i}]"
        try:
            rule = _rule(raw, where, canonical)
        except _RuleError as exc:
            problems.append((exc.where, exc.message))
            continue
        if rule.id in seen:
            problems.append((f"{where}.id", f"{rule.id!r} is used twice; ids must be unique"))
            continue
        seen.add(rule.id)
        rules.append(rule)
    return tuple(rules), problems


class _RuleError(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message


def _text_field(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _RuleError(f"{where}.{key}", "is missing; give it as text")
    return value.strip()


def _rule(raw: Any, where: str, canonical: str) -> SafetyRule:
    if not isinstance(raw, Mapping):
        raise _RuleError(where, "must be a mapping (id, title, answer|score|deterioration, ...)")
    rule_id = _text_field(raw, "id", where)
    where = f"rules[{rule_id}]"
    title = raw.get("title")
    if not isinstance(title, Mapping) or not {"nl", "en"} <= set(title):
        raise _RuleError(f"{where}.title", "needs nl and en")
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        raise _RuleError(where, "needs exactly one of answer, score, deterioration")
    kind = kinds[0]
    body = raw[kind]
    if not isinstance(body, Mapping):
        raise _RuleError(f"{where}.{kind}", "must be a mapping with items")
    priority = raw.get("priority")
    if priority not in PRIORITIES:
        raise _RuleError(f"{where}.priority", f"use one of {', '.join(PRIORITIES)}")
    unless = body.get("unless", [])
    at_least, at_most = body.get("at_least"), body.get("at_most")
    codes_ok = isinstance(unless, list) and all("|" in str(u) for u in unless)
    if kind == "answer" and not codes_ok:
        raise _RuleError(f"{where}.answer.unless", "must be a list of system|code")
    if kind == "score":
        for name, value in (("at_least", at_least), ("at_most", at_most)):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not number:
                raise _RuleError(f"{where}.score.{name}", "must be a number")
        if at_least is None and at_most is None:
            raise _RuleError(f"{where}.score", "needs at_least or at_most")
    return SafetyRule(
        id=rule_id,
        title={str(k): str(v) for k, v in title.items()},
        kind=kind,
        items=_selectors(body.get("items"), f"{where}.{kind}.items", canonical),
        priority=priority,
        client_text=_text_field(raw, "client_text", where),
        source=_text_field(raw, "source", where),
        unless=frozenset(str(u).replace("{canonical}", canonical) for u in unless or []),
        at_least=float(at_least) if at_least is not None else None,
        at_most=float(at_most) if at_most is not None else None,
    )


def _selectors(raw: Any, where: str, canonical: str) -> tuple[ItemSelector, ...]:
    if not isinstance(raw, list) or not raw:
        raise _RuleError(where, "must list the items the rule looks at")
    selectors = []
    for j, item in enumerate(raw):
        at = f"{where}[{j}]"
        if not isinstance(item, Mapping):
            raise _RuleError(at, "must be {code: system|code} or {questionnaire, link_id}")
        if "code" in item:
            if "|" not in str(item["code"]):
                raise _RuleError(f"{at}.code", "must be system|code")
            selectors.append(ItemSelector(code=str(item["code"])))
        elif item.get("questionnaire") and item.get("link_id"):
            url = str(item["questionnaire"]).replace("{canonical}", canonical)
            selectors.append(ItemSelector(questionnaire=url, link_id=str(item["link_id"])))
        else:
            raise _RuleError(at, "needs code, or questionnaire and link_id")
    return tuple(selectors)


# --- evaluating the rules -----------------------------------------------------------------


def _walk(items: Sequence[Mapping[str, Any]] | None) -> Iterator[Mapping[str, Any]]:
    for item in items or []:
        yield item
        yield from _walk(item.get("item"))
        for answer in item.get("answer", []) or []:
            yield from _walk(answer.get("item"))


def _targets(rule: SafetyRule, questionnaire: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The questionnaire's items the rule looks at."""
    url = str(questionnaire.get("url", "")).split("|", 1)[0] or None
    return [
        item
        for item in _walk(questionnaire.get("item"))
        if any(s.matches(url, item) for s in rule.items)
    ]


def _answers(response: Mapping[str, Any], link_id: str) -> list[Mapping[str, Any]]:
    return [
        answer
        for item in _walk(response.get("item"))
        if item.get("linkId") == link_id
        for answer in item.get("answer", []) or []
    ]


def _answer_value(answer: Mapping[str, Any]) -> tuple[str | None, str, float | None]:
    """(coding key, what to show, number) of one answer."""
    for key, value in answer.items():
        if not key.startswith("value"):
            continue
        if key == "valueCoding" and isinstance(value, Mapping):
            shown = str(value.get("display") or value.get("code") or "")
            return _coding_key(value), shown, None
        if key == "valueQuantity" and isinstance(value, Mapping):
            number = value.get("value")
            return None, str(number), float(number) if number is not None else None
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return None, _number(float(value)), float(value)
        return None, str(value), None
    return None, "", None


def _answer_systems(item: Mapping[str, Any], questionnaire: Mapping[str, Any]) -> dict[str, str]:
    """code -> system of the item's answers (its options, or its contained ValueSet): some
    systems (HL7's own SDC example among them) send a coding without its system."""
    codings = [o.get("valueCoding", {}) for o in item.get("answerOption", []) or []]
    reference = str(item.get("answerValueSet", ""))
    for contained in questionnaire.get("contained", []) or []:
        if reference == f"#{contained.get('id')}":
            for include in contained.get("compose", {}).get("include", []) or []:
                codings += [
                    {"system": include.get("system"), "code": c.get("code")}
                    for c in include.get("concept", []) or []
                ]
    return {str(c.get("code")): str(c.get("system")) for c in codings if c.get("system")}


def _score(link_id: str, response: Mapping[str, Any], scores: Mapping[str, float]) -> float | None:
    if link_id in scores:
        return float(scores[link_id])
    for answer in _answers(response, link_id):
        number = _answer_value(answer)[2]
        if number is not None:
            return number
    return None


@dataclass(frozen=True)
class _Facts:
    """What the rules are evaluated on."""

    questionnaire: Mapping[str, Any]
    response: Mapping[str, Any]
    scores: Mapping[str, float]
    previous: Mapping[str, float]


def _answer_fires(rule: SafetyRule, item: Mapping[str, Any], facts: _Facts) -> str | None:
    """The answer that fires an answer rule on ``item``; None when none does."""
    systems = _answer_systems(item, facts.questionnaire)
    for answer in _answers(facts.response, str(item.get("linkId"))):
        key, shown, _ = _answer_value(answer)
        if key is not None and key.startswith("|"):  # a coding without its system
            key = f"{systems.get(key[1:], '')}{key}"
        if key is None or key not in rule.unless:
            return shown
    return None


def _score_fires(rule: SafetyRule, item: Mapping[str, Any], facts: _Facts) -> str | None:
    """The score (or "before -> after") that fires a score or deterioration rule."""
    link_id = str(item.get("linkId"))
    value = _score(link_id, facts.response, facts.scores)
    if value is None:
        return None
    if rule.kind == "score":
        low_ok = rule.at_least is None or value >= rule.at_least
        high_ok = rule.at_most is None or value <= rule.at_most
        return _number(value) if low_ok and high_ok else None
    before = facts.previous.get(link_id)
    if before is None:
        return None
    change = reliable_change(str(facts.questionnaire.get("url", "")), link_id, before, value)
    worse = change is not None and change.verdict == "worse"
    return f"{_number(before)} -> {_number(value)}" if worse else None


def safety_signals(
    rules: Sequence[SafetyRule],
    questionnaire: Mapping[str, Any],
    response: Mapping[str, Any],
    scores: Mapping[str, float] | None = None,
    previous: Mapping[str, float] | None = None,
) -> list[Signal]:
    """Every rule that fires on this response, at most one signal per rule, urgent first.

    ``scores``: the response's scores by linkId (from ``score``; a score missing here is
    read from the response's own answer, as another system's calculated item holds it).
    ``previous``: the client's previous score per linkId on the same questionnaire.
    """
    facts = _Facts(questionnaire, response, scores or {}, previous or {})
    found = []
    for rule in rules:
        fires = _answer_fires if rule.kind == "answer" else _score_fires
        for item in _targets(rule, questionnaire):
            evidence = fires(rule, item, facts)
            if evidence is not None:
                link_id, text = str(item.get("linkId")), str(item.get("text", ""))
                found.append(Signal(rule, link_id, text, evidence))
                break
    return sorted(found, key=lambda s: PRIORITIES.index(s.priority))
