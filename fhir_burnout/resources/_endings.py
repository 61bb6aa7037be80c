"""Why a programme ended: our CodeSystem and ValueSet of ending reasons (pure data).

A care professional who stops or finishes a client's programme picks one of these; the
reason reaches the EHR as ``Task.statusReason`` on every Task that closes and as our
``ending-reason`` extension on the CarePlan (R4 CarePlan has no element for why it ended).
Codes are stable, like the programme's: never rename one, retire it and add another.
"""

from __future__ import annotations

from typing import Any

from fhir_burnout.resources._fhirjson import all_codes_expansion, canonical, put_text
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
    concepts = []
    for code, nl, en, stop, finish in ENDING_REASONS:
        fits = [e for e, yes in (("stop", stop), ("finish", finish)) if yes]
        concept = _concept(programme, code, Text.of({"nl": nl, "en": en}))
        concept["property"] = [{"code": "ending", "valueCode": e} for e in fits]
        concepts.append(concept)
    prop = {"code": "ending", "description": "the ending it fits: stop or finish", "type": "code"}
    return reason_resources(
        programme, ENDING_REASON, "FhirBurnoutEndingReason", (_TITLE, _DESCRIPTION), concepts,
        properties=[prop],
    )  # fmt: skip


#: The id of the CodeSystem (and ValueSet) of the reasons a referral is declined for.
DECLINE_REASON = "referral-decline-reason"
_DECLINE_TEXTS = (
    Text.of(
        {"nl": "Reden van afwijzen van een aanmelding", "en": "Reason for declining a referral"}
    ),
    Text.of(
        {
            "nl": "Waarom een praktijk een aanmelding voor het zelfhulpprogramma niet aannam; "
            "de verwijzer leest de reden met de toelichting van de behandelaar.",
            "en": "Why a practice did not take a referral for the self-help programme on; the "
            "referrer reads the reason with the care professional's explanation.",
        }
    ),
)


def decline_reason_resources(programme: Programme) -> list[dict[str, Any]]:
    """The CodeSystem of referral decline reasons (content/triage.yaml) and its ValueSet:
    the referrer's EHR receives these codes in Task.statusReason, so they are published."""
    if not programme.decline_reasons:
        return []
    concepts = [_concept(programme, code, display) for code, display in programme.decline_reasons]
    return reason_resources(
        programme, DECLINE_REASON, "FhirBurnoutReferralDeclineReason", _DECLINE_TEXTS, concepts
    )


def _concept(programme: Programme, code: str, display: Text) -> dict[str, Any]:
    """A concept with its display in the package's language and the others as designations."""
    lang = programme.language
    concept: dict[str, Any] = {"code": code, "display": display.get(lang) or code}
    others = [{"language": o, "value": t} for o, t in display.values if o != lang and t]
    if others:
        concept["designation"] = others
    return concept


def reason_resources(
    programme: Programme,
    rid: str,
    name: str,
    texts: tuple[Text, Text],
    concepts: list[dict[str, Any]],
    *,
    properties: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """A complete CodeSystem of our own coded reasons and the ValueSet of all its codes, with
    an expansion (so an app needs no terminology server)."""
    lang, (title, description) = programme.language, texts
    url = programme.url("CodeSystem", rid)
    publication: dict[str, Any] = {"status": "active", "date": programme.date}
    if programme.publisher:
        publication["publisher"] = programme.publisher
    head = {"language": lang, "version": programme.version, "name": name}
    cs: dict[str, Any] = {"resourceType": "CodeSystem", "id": rid, "url": url, **head}
    put_text(cs, "title", title, lang)
    cs.update(publication)
    put_text(cs, "description", description, lang)
    cs |= {
        "caseSensitive": True,
        "valueSet": canonical(programme.url("ValueSet", rid), programme.version),
        "content": "complete",
        "count": len(concepts),
    }
    if properties:
        cs["property"] = properties
    cs["concept"] = concepts
    vs: dict[str, Any] = {
        "resourceType": "ValueSet",
        "id": rid,
        "url": programme.url("ValueSet", rid),
        **head,
    }
    put_text(vs, "title", title, lang)
    vs.update(publication)
    put_text(vs, "description", description, lang)
    vs |= {
        "compose": {"include": [{"system": url, "version": programme.version}]},
        "expansion": all_codes_expansion(rid, url, programme.version, programme.date, concepts),
    }
    return [cs, vs]
