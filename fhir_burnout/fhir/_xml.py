"""FHIR XML to FHIR JSON and back, for resources other systems wrote and the bundles we write.

fhir.resources' XML reader validates while it reads and refuses some valid R4 content (a
primitive extension on ``Extension.value[x]``: its R4B ``Extension`` model has no
``_valueString``), and it turns XML comments into a non-FHIR ``fhir_comments`` member. So we
convert ourselves, following the XML and JSON rules of FHIR R4 (§2.6/§2.7): primitives
become JSON values with their ``id`` and extensions under ``_name``, repeating elements
become arrays (``null`` keeps primitive arrays aligned), ``Element.id`` and
``Extension.url`` are attributes, the Narrative ``div`` stays XHTML text, contained
resources get their ``resourceType``, comments are dropped. Which elements repeat and which
primitive type each has is read from the fhir.resources models' field metadata: the models
are the data dictionary here, not the validator.

Writing XML follows the same rules the other way, in each type's element order, and keeps
every primitive as written (fhir.resources' writer rewrites ``...Z`` as ``...+00:00``), so
JSON -> XML -> JSON gives back the same JSON.

The parser is lxml with entity resolution, DTD loading and network access off.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.types import Xhtml
from lxml import etree

from fhir_burnout.errors import FhirBurnoutError

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"


class FhirXmlError(FhirBurnoutError, ValueError):
    """XML that is not a FHIR resource; the message says where."""

    code = "structure"


def safe_xml_parser() -> etree.XMLParser:
    """An XML parser with entity resolution, DTD loading and network access off."""
    return etree.XMLParser(
        resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False
    )


@dataclass(frozen=True)
class _Element:
    repeats: bool
    kind: str  # boolean | integer | decimal | string | xhtml | complex | resource
    model: Any = None  # the fhir.resources class of a complex element


def _unwrap(annotation: Any) -> tuple[bool, Any, tuple[Any, ...]]:
    """(repeats, base type, Annotated metadata) of a field's type annotation."""
    repeats = False
    metadata: tuple[Any, ...] = ()
    while True:
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            annotation = next(a for a in args if a is not type(None))
        elif origin is list:
            repeats, annotation = True, args[0]
        elif origin is typing.Annotated:
            annotation, metadata = args[0], args[1:]
        else:
            return repeats, annotation, metadata


@functools.cache
def _elements(model: Any) -> dict[str, _Element]:
    """The elements of a fhir.resources model by their FHIR name."""
    found = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra or {}
        if not isinstance(extra, dict) or not extra.get("element_property"):
            continue
        repeats, base, metadata = _unwrap(info.annotation)
        if any(isinstance(m, Xhtml) for m in metadata):
            element = _Element(repeats, "xhtml")
        elif hasattr(base, "get_model_klass"):
            target = base.get_model_klass()
            kind = "resource" if target.__name__ in ("Resource", "DomainResource") else "complex"
            element = _Element(repeats, kind, target)
        elif base is bool:
            element = _Element(repeats, "boolean")
        elif base is int:
            element = _Element(repeats, "integer")
        elif base is Decimal:
            element = _Element(repeats, "decimal")
        else:
            element = _Element(repeats, "string")
        found[info.alias or name] = element
    return found


def _primitive(kind: str, text: str | None, where: str) -> Any:
    if text is None:
        return None
    try:
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if kind == "integer":
            return int(text)
        if kind == "decimal":
            number = Decimal(text)
            if not number.is_finite():
                raise ValueError(text)
            return (
                int(number)
                if number == number.to_integral_value() and "." not in text
                else (float(number))
            )
    except (ValueError, ArithmeticError):
        raise FhirXmlError(f"{where}: {text!r} is not a valid {kind}") from None
    return text


def _local(node: Any, where: str) -> str:
    qname = etree.QName(node)
    if qname.namespace != FHIR_NS:
        raise FhirXmlError(f"{where}: element {qname.localname!r} is not in the FHIR namespace")
    return str(qname.localname)


def _children(node: Any) -> list[Any]:
    return [c for c in node if isinstance(c.tag, str)]  # no comments, no PIs


def _resource(node: Any, where: str) -> dict[str, Any]:
    name = _local(node, where)
    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError):
        raise FhirXmlError(f"{where}: {name!r} is not a FHIR resource type") from None
    return {"resourceType": name, **_complex(node, model, f"{where}{name}")}


def _primitive_element(
    child: Any, element: _Element, path: str
) -> tuple[Any, dict[str, Any] | None]:
    """A primitive's JSON value and what goes under ``_name``: its id and extensions."""
    _local(child, path)
    extras: dict[str, Any] = {}
    if child.get("id") is not None:
        extras["id"] = child.get("id")
    extension = get_fhir_model_class("Extension")
    extensions = [
        _complex(e, extension, f"{path}.extension")
        for e in _children(child)
        if _local(e, path) == "extension"
    ]
    if extensions:
        extras["extension"] = extensions
    value = _primitive(element.kind, child.get("value"), path)
    if value is None and not extras:
        raise FhirXmlError(f"{path}: has neither a value nor extensions")
    return value, extras or None


def _value(child: Any, element: _Element, path: str) -> Any:
    """The JSON of a complex, resource or XHTML element."""
    if element.kind == "xhtml":
        return etree.tostring(child, encoding=str, with_tail=False)
    if element.kind == "resource":
        inner = _children(child)
        if len(inner) != 1:
            raise FhirXmlError(f"{path}: must hold exactly one resource")
        return _resource(inner[0], f"{path}/")
    _local(child, path)
    return _complex(child, element.model, path)


def _complex(node: Any, model: Any, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    elements = _elements(model)
    for attribute in ("id", "url"):  # Element.id and Extension.url are attributes
        if node.get(attribute) is not None and attribute in elements:
            out[attribute] = node.get(attribute)
    primitives: dict[str, list[tuple[Any, dict[str, Any] | None]]] = {}
    for child in _children(node):
        name = etree.QName(child).localname
        path = f"{where}.{name}"
        element = elements.get(name)
        if element is None:
            raise FhirXmlError(f"{path}: no such element in {model.__name__}")
        if element.kind in ("boolean", "integer", "decimal", "string"):
            primitives.setdefault(name, []).append(_primitive_element(child, element, path))
        elif element.repeats:
            out.setdefault(name, []).append(_value(child, element, path))
        elif name in out:
            raise FhirXmlError(f"{path}: may occur only once")
        else:
            out[name] = _value(child, element, path)
    for name, pairs in primitives.items():
        repeats = elements[name].repeats
        if not repeats and len(pairs) > 1:
            raise FhirXmlError(f"{where}.{name}: may occur only once")
        values = [v for v, _ in pairs]
        underscored = [e for _, e in pairs]
        if any(v is not None for v in values):
            out[name] = values if repeats else values[0]
        if any(e is not None for e in underscored):
            out["_" + name] = underscored if repeats else underscored[0]
    return out


def resource_from_xml(data: bytes) -> dict[str, Any]:
    """The FHIR JSON of one resource given as FHIR XML; FhirXmlError when it is not one."""
    try:
        root = etree.fromstring(data, parser=safe_xml_parser())
    except etree.XMLSyntaxError as exc:
        raise FhirXmlError(f"not well-formed XML: {exc}") from None
    return _resource(root, "")


def _sequence(model: Any) -> list[str]:
    return list(model.elements_sequence())


def _xml_primitive(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write_complex(parent: Any, data: dict[str, Any], model: Any, tag: str, where: str) -> None:
    node = etree.SubElement(parent, tag) if parent is not None else etree.Element(tag)
    _fill(node, data, model, where)


def _fill(node: Any, data: dict[str, Any], model: Any, where: str) -> None:
    elements = _elements(model)
    known = {k.removeprefix("_") for k in data} - {"resourceType"}
    unknown = sorted(known - set(elements))
    if unknown:
        raise FhirXmlError(f"{where}.{unknown[0]}: no such element in {model.__name__}")
    # Element.id and Extension.url are attributes; a resource's id is an element.
    attributes = set() if "resourceType" in data else {"id"}
    if model.__name__ == "Extension":
        attributes.add("url")
    for attribute in sorted(attributes & set(data)):
        node.set(attribute, str(data[attribute]))
    for name in _sequence(model):
        if name in attributes or (name not in data and "_" + name not in data):
            continue
        element = elements[name]
        path = f"{where}.{name}"
        tag = f"{{{FHIR_NS}}}{name}"
        if element.kind in ("boolean", "integer", "decimal", "string"):
            values = data.get(name)
            extras = data.get("_" + name)
            if not element.repeats:
                values, extras = [values], [extras]
            values = values if values is not None else [None] * len(extras or [])
            extras = extras if extras is not None else [None] * len(values)
            for value, extra in zip(values, extras, strict=True):
                child = etree.SubElement(node, tag)
                if extra and extra.get("id"):
                    child.set("id", str(extra["id"]))
                if value is not None:
                    child.set("value", _xml_primitive(value))
                extension = get_fhir_model_class("Extension")
                for ext in (extra or {}).get("extension", []):
                    _write_complex(child, ext, extension, f"{{{FHIR_NS}}}extension", path)
            continue
        values = data[name] if element.repeats else [data[name]]
        for value in values:
            if element.kind == "xhtml":
                node.append(etree.fromstring(value, parser=safe_xml_parser()))
            elif element.kind == "resource":
                holder = etree.SubElement(node, tag)
                holder.append(_resource_to_xml(value, f"{path}/"))
            else:
                _write_complex(node, value, element.model, tag, path)


def _resource_to_xml(data: dict[str, Any], where: str) -> Any:
    name = str(data.get("resourceType", ""))
    try:
        model = get_fhir_model_class(name)
    except (KeyError, ValueError):
        raise FhirXmlError(f"{where}: {name!r} is not a FHIR resource type") from None
    node = etree.Element(f"{{{FHIR_NS}}}{name}", nsmap={None: FHIR_NS})  # type: ignore[dict-item]
    _fill(node, data, model, f"{where}{name}")
    return node


def resource_to_xml(resource: dict[str, Any]) -> bytes:
    """FHIR XML of one resource given as FHIR JSON (UTF-8, with an XML declaration)."""
    root = _resource_to_xml(resource, "")
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
