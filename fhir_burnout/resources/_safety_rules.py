"""Loading ``content/safety-rules.yaml``: the programme's safety rules, as data.

Read and checked like the rest of the content: a broken rule becomes a
:class:`~fhir_burnout.resources.Problem` naming the rule and what is wrong, and
``fhir-burnout validate`` reports it. The rules themselves are evaluated by
``questionnaire.safety_signals``.
"""

from __future__ import annotations

from pathlib import Path

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
