"""The referral letter's XML Schema, and its complaints turned into readable problems.

libxml2 words a schema error as ``Element '{ns}bsn': [facet 'pattern'] The value '12345'
is not accepted by ...``: it quotes the offending value, which may be a BSN or a name. So
each message is rewritten from its error type, the element and our own schema's facets,
and anything else quoted is blanked; the place is the line and the element path.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from importlib import resources
from typing import Any, cast

from lxml import etree

from fhir_burnout.fhir import safe_xml_parser
from fhir_burnout.referral._errors import LetterProblem
from fhir_burnout.referral._model import LETTER_NAMESPACE

#: At most this many problems are listed; a letter that is wrong everywhere says so once.
MAX_PROBLEMS = 20

# What a value should look like, by element name, for messages about a wrong value.
_EXPECTED = {
    "bsn": "9 digits",
    "agb": "8 digits",
    "birthDate": "a date written YYYY-MM-DD, e.g. 1980-01-31, without a time zone",
    "dateSent": "a date written YYYY-MM-DD, e.g. 2025-01-31, without a time zone",
    "system": "an absolute URI such as https://... or urn:oid:...",
    "phone": "digits, spaces, hyphens and parentheses, optionally starting with +",
    "email": "an e-mail address such as name@example.org",
    "reason": "text with at least one character that is not a space",
    "notes": "text with at least one character that is not a space",
}

_PREFIX_NAME = re.compile(r"^Element '([^']*)'")
_PREFIX = re.compile(r"^Element '[^']*'(?:, attribute '(?P<attribute>[^']*)')?: ")
_SET = re.compile(r"\{(?P<values>'[^{}]*')\}")
_NUMBERS = re.compile(r"'(\d+)'")
_QUOTED = re.compile(r"'[^']*'")

_local = threading.local()


def letter_schema() -> etree.XMLSchema:
    """The XML Schema of the letter, parsed with entities, DTDs and network off.

    One per thread: an XMLSchema keeps the errors of its last validation on itself.
    """
    schema: etree.XMLSchema | None = getattr(_local, "schema", None)
    if schema is None:
        source = resources.files("fhir_burnout.referral").joinpath("referral-letter.xsd")
        document = etree.fromstring(source.read_bytes(), parser=safe_xml_parser())
        schema = etree.XMLSchema(document)
        _local.schema = schema
    return schema


def element_path(element: Any) -> str:
    """``/referralLetter/patient/name/given[2]``: local names, a position where repeated;
    an element in another namespace than the letter's is written ``{namespace}name``."""
    steps = []
    node = element
    while node is not None:
        qname = etree.QName(node)
        name = qname.localname
        if qname.namespace != LETTER_NAMESPACE:
            name = f"{{{qname.namespace or ''}}}{name}"
        parent = node.getparent()
        if parent is not None:
            same = [child for child in parent if child.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


def _without_namespace(text: str) -> str:
    # Our own namespace is noise in a message; another one is the point, so it stays.
    return text.replace("{" + LETTER_NAMESPACE + "}", "")


# Errors whose message is the same whatever the element.
_FIXED = {
    "SCHEMAV_CVC_MINLENGTH_VALID": "must not be empty",
    "SCHEMAV_CVC_TYPE_3_1_1": "this attribute is not allowed",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_3": "text is not allowed here, only elements",
}


def _message(entry: Any, element_name: str) -> str:
    """What is wrong, in words that quote no value from the letter."""
    text = _PREFIX.sub("", entry.message)
    kind = entry.type_name
    found = _SET.search(text)
    numbers = _NUMBERS.findall(text)
    if kind in _FIXED:
        return _FIXED[kind]
    if kind == "SCHEMAV_CVC_ENUMERATION_VALID" and found:
        values = ", ".join(v.strip(" '") for v in found["values"].split(","))
        return f"the value must be one of: {values}"
    if kind == "SCHEMAV_CVC_MAXLENGTH_VALID" and len(numbers) == 2:
        return f"too long: {numbers[0]} characters, at most {numbers[1]} are allowed"
    if kind == "SCHEMAV_CVC_PATTERN_VALID" or kind.startswith("SCHEMAV_CVC_DATATYPE_VALID"):
        expected = _EXPECTED.get(element_name)
        return f"not a valid value: expected {expected}" if expected else "not a valid value"
    # The rest (elements missing, unexpected or out of order, text where elements belong)
    # name elements, not values; blank anything quoted all the same.
    return _QUOTED.sub("'…'", _without_namespace(text)).rstrip(".")


def _element(tree: Any, entry: Any) -> Any:
    """The element a schema error is about, or None."""
    try:
        # libxml2's path of the node: /*/*[5]/*[1], or with the document's own prefixes.
        found = tree.xpath(entry.path, namespaces=_prefixes(tree)) if entry.path else None
    except etree.XPathError:
        found = None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    # A prefix bound differently in different places: take the element on that line.
    named = _PREFIX_NAME.match(entry.message)
    for element in tree.iter(named[1] if named else etree.Element):
        if element.sourceline == entry.line:
            return element
    return None


def _prefixes(tree: Any) -> dict[str, str]:
    """Every namespace prefix the letter binds (the first binding of each wins)."""
    found: dict[str, str] = {}
    for element in tree.iter(etree.Element):
        for prefix, uri in element.nsmap.items():
            if prefix is not None:
                found.setdefault(prefix, uri)
    return found


def schema_problems(root: Any, schema: etree.XMLSchema) -> list[LetterProblem]:
    """The schema's complaints about the letter rooted at ``root``, as problems."""
    if schema.validate(root):
        return []
    problems = []
    tree = root.getroottree()
    for entry in cast("Iterable[Any]", schema.error_log):
        path, name = "", ""
        element = _element(tree, entry)
        if element is not None:
            path, name = element_path(element), etree.QName(element).localname
        attribute = _PREFIX.match(entry.message)
        if attribute and attribute["attribute"]:
            path += "/@" + attribute["attribute"]
        problems.append(LetterProblem(entry.line or None, path, _message(entry, name)))
    return limited(problems)


def limited(problems: list[LetterProblem]) -> list[LetterProblem]:
    """At most MAX_PROBLEMS problems, and a last line saying how many more there were."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], LetterProblem(None, "", f"... and {more} more problems")]
