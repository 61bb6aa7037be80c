"""``fhir-burnout questionnaire check | validate | score``: the engine for authors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click


@click.group()
def questionnaire() -> None:
    """The questionnaire engine for authors and integrators (JSON or XML files)."""


def _read_fhir(path: Path) -> dict[str, Any]:
    import json  # noqa: PLC0415

    from fhir_burnout.fhir import FhirXmlError, resource_from_xml  # noqa: PLC0415

    data = path.read_bytes()
    try:
        if data.lstrip().startswith(b"<"):
            return resource_from_xml(data)
        return dict(json.loads(data))
    except (FhirXmlError, ValueError) as exc:
        raise click.ClickException(f"{path}: not a FHIR resource in JSON or XML ({exc})") from None


def _form(path: Path) -> Any:
    from fhir_burnout.questionnaire import QuestionnaireError, load_form  # noqa: PLC0415

    try:
        return load_form(_read_fhir(path))
    except QuestionnaireError as exc:
        for link, text in exc.problems:
            click.echo(f"{path}: {link or '(questionnaire)'}: {text}", err=True)
        sys.exit(1)


@questionnaire.command("check")
@click.argument("questionnaire_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def questionnaire_check(questionnaire_file: Path) -> None:
    """Exit 0 when the engine can render the questionnaire; else print every problem."""
    form = _form(questionnaire_file)
    unsupported = [i for i in form.walk() if i.unsupported or i.options_unavailable]
    for item in unsupported:
        click.echo(f"note: {item.link_id}: {item.unsupported or item.options_unavailable}")
    click.echo(f"ok: {sum(1 for _ in form.walk())} items")


@questionnaire.command("validate")
@click.argument("questionnaire_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("response_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def questionnaire_validate(questionnaire_file: Path, response_file: Path) -> None:
    """Print an OperationOutcome with one issue per problem; exit 1 when there are errors."""
    import json  # noqa: PLC0415

    from fhir_burnout.questionnaire import validate as validate_response  # noqa: PLC0415

    issues = validate_response(_form(questionnaire_file), _read_fhir(response_file))
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [i.issue() for i in issues]
        or [{"severity": "information", "code": "informational", "diagnostics": "no problems"}],
    }
    click.echo(json.dumps(outcome, indent=2, ensure_ascii=False))
    if any(i.severity == "error" for i in issues):
        sys.exit(1)


@questionnaire.command("score")
@click.argument("questionnaire_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("response_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", default="nl", show_default=True)
def questionnaire_score(questionnaire_file: Path, response_file: Path, lang: str) -> None:
    """Print the scores and their bands as JSON."""
    import json  # noqa: PLC0415

    from fhir_burnout.questionnaire import load_form, score  # noqa: PLC0415

    form = load_form(_read_fhir(questionnaire_file), lang=lang)
    scores = score(form, _read_fhir(response_file))
    data = [
        {
            "linkId": s.link_id,
            "value": None if s.value is None else float(s.value),
            "band": s.band,
            "label": s.label,
            # in a repeating group: which occurrence, from the outside in
            **({"instance": [[g, n] for g, n in s.instance]} if s.instance else {}),
        }
        for s in scores
    ]
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
