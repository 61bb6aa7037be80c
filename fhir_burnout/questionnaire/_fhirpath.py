"""FHIRPath over QuestionnaireResponses, with the SDC functions fhirpathpy lacks.

SDC (Structured Data Capture) scores answers with ``weight()`` (``ordinal()`` in older
releases): the weight of a coded answer is the ``itemWeight`` extension on the matching
answerOption of the Questionnaire, or the ``ordinalValue`` extension on the Coding.
fhirpathpy implements neither, so we register them as user functions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from antlr4 import CommonTokenStream, InputStream  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from antlr4.tree.Tree import ParseTreeWalker  # type: ignore[import-untyped]
from fhirpathpy import apply_parsed_path
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"


def _items(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _items(item.get("item", []))


def answer_weights(questionnaire: dict[str, Any]) -> dict[tuple[str | None, str], Decimal]:
    """The weight of every coded answer option, keyed by (system, code)."""
    weights: dict[tuple[str | None, str], Decimal] = {}
    for item in _items(questionnaire.get("item", [])):
        for option in item.get("answerOption", []):
            coding = option.get("valueCoding")
            if not coding:
                continue
            found = [e for e in option.get("extension", []) if e.get("url") == ITEM_WEIGHT]
            found += [e for e in coding.get("extension", []) if e.get("url") == ORDINAL_VALUE]
            if found:
                key = (coding.get("system"), str(coding.get("code")))
                weights[key] = Decimal(str(found[0]["valueDecimal"]))
    return weights


def _sum(values: list[Any]) -> list[Any]:
    """FHIRPath sum() (2.0 §5.8): fhirpathpy 2.2's fails on typed answers (ResourceNode + int).

    User functions receive plain values (fhirpathpy unwraps them first), so adding those is
    the whole fix; an empty collection sums to 0.
    """
    numbers = [
        v for v in values if isinstance(v, int | float | Decimal) and not isinstance(v, bool)
    ]
    if len(numbers) != len(values):
        return []
    total = sum((Decimal(str(v)) for v in numbers), Decimal(0))
    return [
        int(total)
        if total == total.to_integral_value() and all(isinstance(v, int) for v in numbers)
        else total
    ]


def _power(values: list[Any], exponent: Any) -> list[Any]:
    """FHIRPath power() (2.0 §5.7.8): fhirpathpy 2.2 returns nothing for a non-integer exponent.

    Empty when the result is not a real number (a negative base with a fractional exponent),
    as the specification says.
    """
    exponents = exponent if isinstance(exponent, list) else [exponent]
    if len(values) != 1 or len(exponents) != 1:
        return []
    base, power = values[0], exponents[0]
    if isinstance(base, bool) or isinstance(power, bool):
        return []
    try:
        result = Decimal(str(base)) ** Decimal(str(power))
    except (ArithmeticError, ValueError):
        return []
    if isinstance(base, int) and isinstance(power, int) and power >= 0:
        return [int(result)]
    return [result]


class FhirPathSyntaxError(ValueError):
    """An expression that is not FHIRPath; the message says where and what."""


class _Collect(ErrorListener):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def syntaxError(  # noqa: N802, PLR0917 -- antlr's name and signature
        self, recognizer: Any, offending: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        self.errors.append(f"column {column + 1}: {msg}")


@functools.lru_cache(maxsize=1024)
def _parsed(expression: str) -> Any:
    """fhirpathpy's parse, but a syntax error raises instead of being skipped.

    fhirpathpy 2.2 installs antlr's do-nothing error listener and parses ``expression``
    rather than ``entireExpression``, so ``item.where(`` and ``a.b c`` parse into a partial
    tree and fail (or worse, answer) only while evaluating. Same lexer, parser and tree
    listener; an error listener that keeps the errors, and the rule that ends at EOF.
    Parsing dominates short expressions, so the tree is cached (only read while evaluating).
    """
    errors = _Collect()
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(errors)
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.buildParseTrees = True
    parser.removeErrorListeners()
    parser.addErrorListener(errors)
    # The whole text must be one expression: "a.b c" is an error, not "a.b".
    tree = parser.entireExpression()  # type: ignore[no-untyped-call]
    if errors.errors:
        raise FhirPathSyntaxError("; ".join(errors.errors))
    listener = ASTPathListener()  # type: ignore[no-untyped-call]
    ParseTreeWalker().walk(listener, tree.expression())
    return listener.parentStack[0]


def check_syntax(expression: str) -> str | None:
    """None when ``expression`` is FHIRPath, else what is wrong with it."""
    try:
        _parsed(expression)
    except FhirPathSyntaxError as exc:
        return str(exc)
    return None


def evaluate(
    expression: str,
    response: dict[str, Any],
    questionnaire: dict[str, Any],
    variables: dict[str, Any] | None = None,
    weights: dict[tuple[str | None, str], Decimal] | None = None,
    *,
    context: dict[str, Any] | None = None,
    raw: bool = False,
) -> list[Any]:
    """Evaluate ``expression`` with %resource = the response and SDC's weight().

    ``context`` is the response item an item-level expression belongs to (SDC ``%context``,
    also the start of a path without a ``%``); without it, the response itself. With
    ``raw``, the result keeps fhirpathpy's typed nodes, so that a variable holding items
    can be navigated further (``%group.item.answer.value`` needs to know value is value[x]).
    """
    if weights is None:
        weights = answer_weights(questionnaire)

    def weight(codings: list[Any]) -> list[Decimal]:
        found = []
        for coding in codings:
            if isinstance(coding, dict):
                key = (coding.get("system"), str(coding.get("code")))
                if key in weights:
                    found.append(weights[key])
        return found

    functions = {
        "weight": {"fn": weight, "arity": {0: []}},
        "ordinal": {"fn": weight, "arity": {0: []}},
        "sum": {"fn": _sum, "arity": {0: []}},
        "power": {"fn": _power, "arity": {1: ["Number"]}},
    }
    base: Any = response
    if context is not None:
        base = ResourceNode.create_node(context, "QuestionnaireResponse.item")  # type: ignore[no-untyped-call]
    names = {"resource": response, "questionnaire": questionnaire, **(variables or {})}
    names["context"] = base
    result = apply_parsed_path(  # type: ignore[no-untyped-call]
        base,
        _parsed(expression),
        names,
        models["r4"],
        {"userInvocationTable": functions, "returnRawData": raw},
    )
    return list(result)
