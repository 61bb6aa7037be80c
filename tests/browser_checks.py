"""Checks of a page in a real browser that several test modules make (a test module never
imports another: tests/test_suite_layout.py)."""

from __future__ import annotations


def tap_targets_and_rows(page, at_least: int = 11) -> None:
    """Every choice row, button and text field is at least 44 x 44 px; every radio and
    checkbox sits on one line with its label (their boxes overlap vertically), left of it."""
    targets = page.locator(
        "main .fb-option, main form button:not(.default-action), "
        "main input:not([type=hidden], [type=radio], [type=checkbox]), main textarea"
    )
    assert targets.count() >= at_least
    for n in range(targets.count()):
        box = targets.nth(n).bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, targets.nth(n).inner_text()
    rows = page.locator("main .fb-option")
    for n in range(rows.count()):
        control = rows.nth(n).locator("input").bounding_box()
        label = rows.nth(n).locator("span").bounding_box()
        overlap = min(control["y"] + control["height"], label["y"] + label["height"]) - max(
            control["y"], label["y"]
        )
        assert overlap > 0 and control["x"] < label["x"], rows.nth(n).inner_text()
        assert control["width"] >= 20 and control["height"] >= 20  # not 13 x 13 any more
