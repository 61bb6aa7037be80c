"""A practice's look: its name, logo and two colours (``[theme]`` in the settings file).

The pages are built on the NL Design System's components, which read design tokens (CSS
custom properties). ``static/app.css`` sets our calm default tokens; a practice's theme
overrides only the two colour tokens (``--fb-color-primary``, ``--fb-color-background``),
served as a small cacheable stylesheet (``Theme.css``), and puts its name and logo in the
header. Colours are checked here, when the settings are read: a theme whose text would be
hard to read never reaches a client (WCAG 2.2, 1.4.3 Contrast (Minimum): 4.5:1 for text).

The logo is a file the app itself serves (img-src 'self'): a logo loaded from another site
would tell that site the address of everyone who opens a mental-health programme.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fhir_burnout.errors import ContentError

__all__ = [
    "DEFAULT_BACKGROUND",
    "DEFAULT_PRIMARY",
    "LOGO_TYPES",
    "ON_PRIMARY",
    "TEXT",
    "Theme",
    "contrast",
]

#: The default theme: a soft warm background and one calm, deep green-blue accent.
DEFAULT_PRIMARY = "#2a6658"
DEFAULT_BACKGROUND = "#faf6f0"
#: Body text (on the background) and the text on the accent (buttons): fixed, so a theme's
#: colours are checked against them (static/app.css uses the same values).
TEXT = "#1f2d2b"
ON_PRIMARY = "#ffffff"
#: WCAG 2.2 AA for normal text.
MINIMUM_CONTRAST = 4.5
#: The logo files a browser shows in an <img>, with their media types.
LOGO_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
#: Larger than any header logo needs; small enough for a phone on a slow connection.
LOGO_MAX_BYTES = 256 * 1024

_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _luminance(colour: str) -> float:
    """Relative luminance of ``#rrggbb`` (WCAG 2.2, "relative luminance")."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    """The contrast ratio of two ``#rrggbb`` colours (WCAG 2.2, "contrast ratio"), 1 to 21."""
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@dataclass(frozen=True)
class Theme:
    """The practice's name and logo in the header, and its two colours as tokens."""

    name: str | None = None
    logo: Path | None = None
    primary: str = DEFAULT_PRIMARY
    background: str = DEFAULT_BACKGROUND

    @property
    def logo_type(self) -> str:
        """The logo's media type (its file's suffix says which)."""
        return LOGO_TYPES[self.logo.suffix.lower()] if self.logo else ""

    def css(self) -> str:
        """The stylesheet that sets this theme's tokens over static/app.css's defaults."""
        return (
            "/* The practice's theme ([theme] in the settings file). */\n"
            f":root {{ --fb-color-primary: {self.primary}; "
            f"--fb-color-background: {self.background}; }}\n"
        )

    @classmethod
    def from_file(
        cls,
        table: dict[str, str],
        *,
        where: str,
        base_dir: Path,
        default_name: str | None,
    ) -> Theme:
        """The theme of a checked ``[theme]`` table; a colour that is not ``#rrggbb``, a
        colour pair below 4.5:1, or a logo that is missing, too large or not an image stops
        the app with the key and the fix."""
        primary = _colour(table.get("primary"), DEFAULT_PRIMARY, "theme.primary", where)
        background = _colour(
            table.get("background"), DEFAULT_BACKGROUND, "theme.background", where
        )
        for key, front, back, what in (
            ("theme.background", TEXT, background, f"the text colour {TEXT} on it"),
            ("theme.primary", primary, background, f"as link text on the background {background}"),
            ("theme.primary", ON_PRIMARY, primary, "under the white text of a button"),
        ):
            ratio = contrast(front, back)
            if ratio < MINIMUM_CONTRAST:
                raise ContentError(
                    where, key,
                    f"{what}: contrast {ratio:.1f}:1, WCAG AA needs at least "
                    f"{MINIMUM_CONTRAST}:1 for text; choose a "
                    f"{'lighter' if key == 'theme.background' else 'darker'} colour",
                )  # fmt: skip
        name = (table.get("name") or "").strip() or default_name
        logo = table.get("logo")
        return cls(
            name=name,
            logo=_logo(base_dir / logo, where) if logo else None,
            primary=primary.lower(),
            background=background.lower(),
        )


def _colour(found: str | None, default: str, key: str, where: str) -> str:
    """A ``#rrggbb`` colour, or the default when the key is left out."""
    if found is None:
        return default
    if not _HEX.fullmatch(found.strip()):
        raise ContentError(where, key, 'must be a colour as "#rrggbb", e.g. "#2a6658"')
    return found.strip()


def _logo(path: Path, where: str) -> Path:
    """A logo file the app can serve: present, an image type browsers show, not too big."""
    if path.suffix.lower() not in LOGO_TYPES:
        raise ContentError(
            where, "theme.logo",
            f"must be a {', '.join(sorted(LOGO_TYPES))} file (the app serves it itself; "
            "a web address is not taken)",
        )  # fmt: skip
    if not path.is_file():
        raise ContentError(where, "theme.logo", f"{path} is not a file")
    if path.stat().st_size > LOGO_MAX_BYTES:
        raise ContentError(
            where, "theme.logo", f"{path} is larger than {LOGO_MAX_BYTES // 1024} kB"
        )
    return path
