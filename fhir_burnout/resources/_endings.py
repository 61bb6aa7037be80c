"""Why a programme ended: our CodeSystem and ValueSet of ending reasons (pure data).

A care professional who stops or finishes a client's programme picks one of these; the
reason reaches the EHR as ``Task.statusReason`` on every Task that closes and as our
``ending-reason`` extension on the CarePlan (R4 CarePlan has no element for why it ended).
Codes are stable, like the programme's: never rename one, retire it and add another.
"""

from __future__ import annotations

from typing import Any

from fhir_burnout.resources._fhirjson import canonical, put_text
from fhir_burnout.resources._model import Programme, Text

#: The id of the CodeSystem and of its ValueSet.
ENDING_REASON = "ending-reason"

#: (code, Dutch display, English display, whether it fits a stop, whether it fits a finish)
ENDING_REASONS: tuple[tuple[str, str, str, bool, bool], ...] = (
    ("goals-reached", "Doelen bereikt", "Goals reached", False, True),
    ("own-choice", "Eigen keuze van de cliënt", "The client's own choice", True, True),
    (
        "referred-on",
        "Behandeling elders of doorverwezen",
        "Treatment elsewhere or referred on",
        True,
        True,
    ),
    ("not-suitable", "Zelfhulp past niet", "Self-help does not suit", True, False),
    ("no-contact", "Geen contact meer", "No contact any more", True, True),
    (
        "needs-more-care",
        "Crisis of meer zorg nodig",
        "Crisis or in need of more care",
        True,
        False,
    ),
    ("other", "Anders", "Other", True, True),
)

_TITLE = Text.of({"nl": "Reden van beëindigen", "en": "Reason for ending"})
_DESCRIPTION = Text.of(
    {
        "nl": "Waarom een behandelaar het programma van een cliënt stopte of afrondde.",
        "en": "Why a care professional stopped or finished a client's programme.",
    }
)


def ending_reason_resources(programme: Programme) -> list[dict[str, Any]]:
    """The CodeSystem of ending reasons and the ValueSet of all its codes (with expansion)."""
    lang = programme.language
    url = programme.url("CodeSystem", ENDING_REASON)
    concepts = []
    for code, nl, en, stop, finish in ENDING_REASONS:
        display, other, translated = (nl, "en", en) if lang == "nl" else (en, "nl", nl)
        fits = [e for e, yes in (("stop", stop), ("finish", finish)) if yes]
        concepts.append(
            {
                "code": code,
                "display": display,
                "designation": [{"language": other, "value": translated}],
                "property": [{"code": "ending", "valueCode": e} for e in fits],
            }
        )
    publication: dict[str, Any] = {"status": "active", "date": programme.date}
    if programme.publisher:
        publication["publisher"] = programme.publisher
    head = {"language": lang, "version": programme.version, "name": "FhirBurnoutEndingReason"}
    cs: dict[str, Any] = {"resourceType": "CodeSystem", "id": ENDING_REASON, "url": url, **head}
    put_text(cs, "title", _TITLE, lang)
    cs.update(publication)
    put_text(cs, "description", _DESCRIPTION, lang)
    cs |= {
        "caseSensitive": True,
        "valueSet": canonical(programme.url("ValueSet", ENDING_REASON), programme.version),
        "content": "complete",
        "count": len(concepts),
        "property": [
            {"code": "ending", "description": "the ending it fits: stop or finish", "type": "code"}
        ],
        "concept": concepts,
    }
    vs: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": ENDING_REASON,
        "url": programme.url("ValueSet", ENDING_REASON),
        **head,
    }
    put_text(vs, "title", _TITLE, lang)
    vs.update(publication)
    put_text(vs, "description", _DESCRIPTION, lang)
    vs |= {
        "compose": {"include": [{"system": url, "version": programme.version}]},
        # An expansion in the package spares apps a terminology server.
        "expansion": {
            "identifier": f"urn:fhir-burnout:expansion:{ENDING_REASON}:{programme.version}",
            "timestamp": programme.date,
            "total": len(concepts),
            "contains": [
                {
                    "system": url,
                    "version": programme.version,
                    "code": c["code"],
                    "display": c["display"],
                    "designation": c["designation"],
                }
                for c in concepts
            ],
        },
    }
    return [cs, vs]
