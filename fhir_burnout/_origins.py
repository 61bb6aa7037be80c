"""Origins as the settings take them (``settings.py``): the EHR pages that may frame the app
(``frame_ancestors``), and whether a host is this machine, where plain http is allowed."""

from __future__ import annotations

import ipaddress
import re

from fhir_burnout.errors import ContentError

#: An origin as CSP's frame-ancestors names one: scheme, host, optional port; nothing else
#: (no wildcard, quote, space or ';' that would change the policy around it).
_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:]+\])(:[0-9]{1,5})?/?")


def frame_origins(raw: list[str], where: str, index: int) -> list[str]:
    """An [[ehr]]'s ``frame_ancestors`` (a list of strings: ``_settings_file``) as origins,
    lower-cased, without a trailing slash; a string that is not an origin stops the app
    with the key and what is wrong."""
    key = f"ehr[{index}].frame_ancestors"
    origins = []
    for item in raw:
        found = _ORIGIN.fullmatch(item.strip().lower())
        if found is None or int((found[3] or ":443")[1:]) > 65535:
            raise ContentError(
                where, key,
                f"{item!r} is not an origin: write the scheme and host (and port) of the EHR's "
                'page, e.g. "https://ehr.example.nl", without a path',
            )  # fmt: skip
        scheme, host = found[1], found[2]
        if scheme == "http" and not loopback(host.strip("[]")):
            raise ContentError(
                where, key,
                f"{item!r}: an EHR's page is https (plain http only on this machine, for tests)",
            )  # fmt: skip
        origins.append(f"{scheme}://{host}{found[3] or ''}")
    return origins


def loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
