"""Homework and questionnaires in the browser, from the questionnaire engine's form model.

GET shows the form with what the client saved before (a draft) or the questionnaire's
initial answers. POST with "save" keeps the answers as a draft; with "submit" the answers
are validated on the server (enableWhen again, types, ranges, required) and, when they are
complete, the QuestionnaireResponse, its scores and the completed Task are stored and queued
for the EHR in one transaction. Whatever the client typed is saved as a draft first, so an
error, an expired session or a lost connection loses nothing. A second submit of the same
form finds the Task completed and stores nothing new.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for
from sqlalchemy.orm import Session

from fhir_burnout.questionnaire import (
    EnableCondition,
    FormItem,
    FormModel,
    build_response,
    evaluate,
    load_form,
    score,
    validate,
)
from fhir_burnout.web._csrf import csrf_ok
from fhir_burnout.web._launch import SessionExpired
from fhir_burnout.web._render import language, message_page, render
from fhir_burnout.workflow import load_draft, save_draft, submit_response

bp = Blueprint("questionnaire_pages", __name__)
PREFIX = "a."  # form field names: a.<linkId>


def _form_for(definition: str, lang: str) -> FormModel:
    definitions = current_app.extensions["fhir_burnout"]["definitions"]
    questionnaire = dict(definitions.by_canonical[definition])
    value_sets = {
        str(r["url"]): r
        for r in definitions.by_canonical.values()
        if r.get("resourceType") == "ValueSet"
    }
    return load_form(questionnaire, lang=lang, value_sets=value_sets)


_TEXT_KEYS = {
    "date": "valueDate", "time": "valueTime", "dateTime": "valueDateTime", "url": "valueUri",
}  # fmt: skip


def _option(item: FormItem, raw: str) -> dict[str, Any]:
    if raw.isdigit() and int(raw) < len(item.options):
        option = item.options[int(raw)]
        return {f"value{option.value_type.capitalize()}": option.value}
    return {"valueString": raw}


def _number(item: FormItem, raw: str) -> dict[str, Any]:
    convert = int if item.type == "integer" else float
    try:
        return {f"value{item.type.capitalize()}": convert(raw.replace(",", "."))}
    except ValueError:
        return {"valueString": raw}


def _value(item: FormItem, raw: str) -> dict[str, Any] | None:
    """One answer from what the browser sent; text that does not fit is kept as a string,
    so the validator can say so and the draft keeps what the person typed."""
    raw = raw.strip()
    if not raw:
        return None
    if item.options:
        return _option(item, raw)
    if item.type in ("integer", "decimal"):
        return _number(item, raw)
    if item.type == "boolean":
        return {"valueBoolean": raw == "true"}
    if item.type == "time" and raw.count(":") == 1:
        raw += ":00"
    if item.type == "dateTime" and "T" in raw and raw.count(":") == 1:
        raw = datetime.fromisoformat(raw).astimezone().isoformat(timespec="seconds")
    return {_TEXT_KEYS.get(item.type, "valueString"): raw}


def answers_from_form(form: FormModel) -> dict[str, Any]:
    """The engine's answers dict from the posted fields (repeating groups: one entry)."""

    def collect(items: tuple[FormItem, ...]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for item in items:
            if item.type == "group" and item.repeats:
                entry = collect(item.children)
                if entry:
                    found[item.link_id] = [entry]
                continue
            if item.type not in ("group", "display") and not item.read_only:
                values = [_value(item, v) for v in request.form.getlist(PREFIX + item.link_id)]
                answers = [v for v in values if v is not None]
                if answers:
                    found[item.link_id] = answers if item.repeats else answers[:1]
            found |= collect(item.children)
        return found

    return collect(form.items)


def _selected(item: FormItem, answers: list[dict[str, Any]]) -> dict[str, Any]:
    """What the template needs to show an item's current answers."""
    chosen, text = set(), ""
    for answer in answers:
        for key, value in answer.items():
            if not key.startswith("value"):
                continue
            for index, option in enumerate(item.options):
                if option.value == value or (
                    isinstance(value, dict) and option.value.get("code") == value.get("code")
                ):
                    chosen.add(str(index))
            text = str(value).lower() if key == "valueBoolean" else str(value)
    return {"chosen": chosen, "text": text}


def _flat(answers: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    flat: dict[str, list[dict[str, Any]]] = {}
    for link, value in answers.items():
        if (
            value
            and isinstance(value[0], dict)
            and not any(k.startswith("value") for k in value[0])
        ):
            for entry in value[:1]:
                flat |= _flat(entry)
        else:
            flat[link] = value
    return flat


def _field_values(question: FormItem, condition: EnableCondition) -> list[str]:
    """The form values of ``question`` that count as equal to the condition's answer."""
    if question.options:
        wanted = condition.answer
        return [
            str(index)
            for index, option in enumerate(question.options)
            if option.value == wanted
            or (
                isinstance(wanted, dict)
                and isinstance(option.value, dict)
                and option.value.get("code") == wanted.get("code")
                and (not wanted.get("system") or option.value.get("system") == wanted["system"])
            )
        ]
    if isinstance(condition.answer, bool):
        return ["true" if condition.answer else "false"]
    if isinstance(condition.answer, dict):  # a Quantity: compare its value
        return [str(condition.answer.get("value"))]
    return [str(condition.answer)]


def enable_specs(form: FormModel) -> dict[str, str]:
    """enableWhen of each item as the page's script reads it (items with an
    enableWhenExpression stay visible: only the server can evaluate FHIRPath)."""
    specs = {}
    for item in form.walk():
        if not item.enable_when or item.enable_when_expression:
            continue
        conditions = []
        for condition in item.enable_when:
            question = form.index[condition.question]
            spec: dict[str, Any] = {"q": condition.question, "op": condition.operator}
            if condition.operator == "exists":
                spec["value"] = bool(condition.answer)
            else:
                spec["values"] = _field_values(question, condition)
            conditions.append(spec)
        specs[item.link_id] = json.dumps(
            {"behavior": item.enable_behavior, "conditions": conditions}
        )
    return specs


def _page(form: FormModel, key: str, answers: dict[str, Any], issues: dict[str, str]) -> Any:
    flat = _flat(answers)
    current = {item.link_id: _selected(item, flat.get(item.link_id, [])) for item in form.walk()}
    return render(
        "questionnaire.html",
        form=form,
        key=key,
        current=current,
        issues=issues,
        prefix=PREFIX,
        enable=enable_specs(form),
        status=400 if issues else 200,
    )


@bp.route("/task/<key>/form", methods=["GET", "POST"])
def questionnaire_page(key: str) -> Any:
    """Show, save or submit the questionnaire of a homework or measure Task."""
    from fhir_burnout.web._client_pages import _own_task  # noqa: PLC0415 -- one lookup

    state = current_app.extensions["fhir_burnout"]
    if request.method == "POST" and not csrf_ok():
        return message_page("error_form_expired", 400)
    try:
        with Session(state["engine"]) as db, db.begin():
            found = _own_task(db, key)
            if found is None or found[0].kind not in ("homework", "measure"):
                return message_page("error_not_found", 404)
            task, who = found
            if task.status not in ("ready", "in-progress"):
                # Sent already (a second submit stores nothing new), or not open yet.
                done = task.status == "completed"
                return (
                    redirect(url_for("launch.home"), code=303)
                    if done
                    else (message_page("error_not_now", 409))
                )
            form = _form_for(task.definition, language())
            if request.method == "GET":
                return _page(form, key, load_draft(db, key) or {}, {})
            return _post(db, form, key, who)
    except SessionExpired:
        return message_page("error_expired", 401)


def _post(db: Session, form: FormModel, key: str, who: str) -> Any:
    answers = answers_from_form(form)
    save_draft(db, key, answers)  # first of all: nothing typed is lost
    if request.form.get("action") != "submit":
        return redirect(url_for("launch.home"), code=303)
    now = datetime.now(UTC)
    response = build_response(
        form, answers, status="completed", subject=who, author=who,
        authored=now.isoformat(timespec="seconds"),
    )  # fmt: skip
    problems = [i for i in validate(form, response) if i.severity == "error"]
    if problems:
        lang = language()
        return _page(form, key, answers, {i.link_id: i.message(lang) for i in problems})
    scores = [
        {"linkId": s.link_id, "value": float(s.value), "band": s.band}
        for s in score(form, response)
        if s.value is not None
    ]
    safety = _safety_signal(form, response)
    definitions = current_app.extensions["fhir_burnout"]["definitions"]
    submit_response(
        db, definitions, key, response, who=who, scores=scores, safety_signal=safety, now=now
    )
    if safety:
        return render("safety.html")
    return redirect(url_for("launch.home"), code=303)


def _safety_signal(form: FormModel, response: dict[str, Any]) -> bool:
    """The questionnaire's own safety-signal expression, on this response."""
    for ext in form.questionnaire.get("extension", []) or []:
        if str(ext.get("url", "")).endswith("/safety-signal"):
            expression = ext.get("valueExpression", {}).get("expression", "")
            result = evaluate(expression, response, dict(form.questionnaire))
            return bool(result) and result[0] is True
    return False
