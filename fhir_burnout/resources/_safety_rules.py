"""Loading ``content/safety-rules.yaml``: the programme's safety rules, as data.

Read and checked like the rest of the content: a broken rule becomes a
:class:`~fhir_burnout.resources.Problem` naming the rule and what is wrong, and
``fhir-burnout validate`` reports it. The rules themselves are evaluated by
``questionnaire.safety_signals``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from fhir_burnout.questionnaire import SafetyRule, parse_safety_rules
from fhir_burnout.resources._problems import Problem

SAFETY_RULES_FILE = "content/safety-rules.yaml"


def load_safety_rules(
    root: str | Path, canonical: str
) -> tuple[tuple[SafetyRule, ...], list[Problem]]:
    """The safety rules under ``root`` (``{canonical}`` filled in) and their problems."""
    path = Path(root) / SAFETY_RULES_FILE
    fix = "see the comment at the top of content/safety-rules.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return (), [Problem(SAFETY_RULES_FILE, "", "is missing", "the programme needs its rules")]
    except yaml.YAMLError as exc:
        return (), [Problem(SAFETY_RULES_FILE, "", f"is not valid YAML: {exc}", fix)]
    rules, problems = parse_safety_rules(data, canonical)
    return rules, [Problem(SAFETY_RULES_FILE, where, what, fix) for where, what in problems]


def _link_ids(items: Sequence[Mapping[str, Any]] | None) -> Iterator[str]:
    for item in items or []:
        yield str(item.get("linkId"))
        yield from _link_ids(item.get("item"))


def check_rule_targets(
    rules: Sequence[SafetyRule], canonical: str, questionnaires: Mapping[str, Mapping[str, Any]]
) -> list[Problem]:
    """A rule that points at one of our questionnaires must find its item there: a renamed
    linkId would otherwise switch a safety rule off without a word. ``questionnaires``:
    our Questionnaires by id, ``{canonical}`` filled in."""
    ours = f"{canonical}/Questionnaire/"
    problems = []
    for rule in rules:
        for selector in rule.items:
            if not (selector.questionnaire or "").startswith(ours):
                continue
            qid = str(selector.questionnaire).removeprefix(ours)
            if qid not in questionnaires:
                what = f"looks at questionnaire {qid!r}, which the programme does not have"
            elif selector.link_id not in set(_link_ids(questionnaires[qid].get("item"))):
                what = f"looks at linkId {selector.link_id!r}, which {qid} does not have"
            else:
                continue
            fix = "point the rule at an existing questionnaire item"
            problems.append(Problem(SAFETY_RULES_FILE, f"rules[{rule.id}]", what, fix))
    return problems
