"""The shape of the settings file, checked before anything is built from it.

``settings.Settings.from_mapping`` builds the app's frozen ``Settings`` from a parsed TOML
file; these pydantic models say first which keys exist, which are required and of what
type. A misspelt key (``auth_metod``) is refused with the key's path and the nearest known
key instead of being silently ignored; a missing ``fhir_base`` is named instead of ending
in a KeyError. What a value means (a scope list, an origin, a rate limit) stays checked
where it is used, in ``settings.py``. The keys themselves are documented in the
``settings`` module docstring.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fhir_burnout.errors import ContentError

__all__ = [
    "EhrTable", "RateLimitsTable", "SafetyTable", "SettingsFile", "ThemeTable", "check_file",
]  # fmt: skip

_TEXT = "a string"
_FLAG = "true or false"


def _text(description: str = _TEXT) -> Any:
    """An optional string setting."""
    return Field(None, description=description)


def _flag() -> Any:
    """An optional true/false setting."""
    return Field(None, description=_FLAG)


class _Table(BaseModel):
    """A table of the file: only its own keys, each of its own TOML type (TOML has real
    booleans and numbers, so nothing is coerced: ``"yes"`` is not true)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SafetyTable(_Table):
    """``[safety]``: what the practice promises about safety signals (required when the
    app starts: ``Settings.check_safety``)."""

    promise_nl: str | None = _text()
    promise_en: str | None = _text()


class RateLimitsTable(_Table):
    """``[rate_limits]``: per door, a limit in Flask-Limiter's notation."""

    launch: str | None = _text('a limit such as "30/minute", or "" (off)')
    callback: str | None = _text('a limit such as "30/minute", or "" (off)')
    invitation: str | None = _text('a limit such as "10/minute", or "" (off)')
    invitation_code: str | None = _text('a limit such as "50/day", or "" (off)')
    machine: str | None = _text('a limit such as "120/minute", or "" (off)')
    machine_address: str | None = _text('a limit such as "600/minute", or "" (off)')


class ThemeTable(_Table):
    """``[theme]``: the practice's name, logo and colours on every page (``_theme``)."""

    name: str | None = _text("a string: the practice's name in the header")
    logo: str | None = _text("a string: the path of a .png, .jpg, .webp or .svg file")
    primary: str | None = _text('a string: a colour as "#rrggbb"')
    background: str | None = _text('a string: a colour as "#rrggbb"')


class EhrTable(_Table):
    """One ``[[ehr]]``: an EHR the app trusts and the sync worker writes to."""

    fhir_base: str = Field(description="the EHR's FHIR base URL, a string")
    client_id: str = Field(description="the app's client id at the EHR, a string")
    mode: str | None = _text('a string: "smart" or "koppeltaal"')
    auth_method: str | None = _text('a string: "none", "client_secret_basic" or ...')
    client_secret: str | None = _text()
    private_key: str | None = _text("a string: the path of a JWK file")
    practice: str | None = _text('a string such as "Organization/123"')
    scopes_practitioner: str | None = _text("a string of scopes")
    scopes_patient: str | None = _text("a string of scopes")
    offline_access: bool | None = _flag()
    safety_owner: str | None = _text('a string such as "PractitionerRole/7"')
    writes: str | None = _text('a string: "backend" or "user"')
    backend_client_id: str | None = _text()
    backend_private_key: str | None = _text("a string: the path of a JWK file")
    backend_scope: str | None = _text("a string of scopes")
    koppeltaal_alg: str | None = _text('a string: "RS512", "RS384" or "ES384"')
    koppeltaal_results: bool | None = _flag()
    summary_to_ehr: bool | None = _flag()
    id_token_nonce: str | None = _text('a string: "echo" or "any"')
    referral_triage: bool | None = _flag()
    practice_name: str | None = _text()
    practice_phone: str | None = _text("a string (write a phone number in quotes)")
    # Lists of strings; settings.py says which string is not an origin or a client id.
    frame_ancestors: list[str] | None = Field(
        None, description='a list of origins, e.g. ["https://ehr.example.nl"]'
    )
    api_clients: list[str] | None = Field(None, description="a list of client ids")


class SettingsFile(_Table):
    """The whole file. ``base_url``, ``secret_key`` and ``token_key`` are required, but may
    come from the environment, so ``Settings.from_mapping`` checks them after the
    overrides."""

    base_url: str | None = _text("a string: the app's public URL")
    database_url: str | None = _text("a string: an SQLAlchemy URL")
    secret_key: str | None = _text()
    token_key: str | None = _text()
    keys_dir: str | None = _text("a string: a folder")
    content_root: str | None = _text("a string: a folder")
    default_ehr: str | None = _text("a string: an [[ehr]]'s fhir_base")
    referral_poll_seconds: float | None = Field(None, description="a number of seconds")
    referral_triage: bool | None = _flag()
    practice_name: str | None = _text()
    rate_limit_storage: str | None = _text('a string such as "memory://" or "redis://.."')
    trusted_proxies: int | None = Field(None, description="a whole number, 0 or more")
    pending_launches_max: int | None = Field(None, description="a whole number, 0 or more")
    crisis_protocol_url: str | None = _text("a string: an https URL")
    rate_limits: RateLimitsTable | None = Field(None, description="a table: [rate_limits]")
    safety: SafetyTable | None = Field(None, description="a table: [safety]")
    theme: ThemeTable | None = Field(None, description="a table: [theme]")
    ehr: list[EhrTable] = Field([], description="a list of [[ehr]] tables")


def check_file(data: Mapping[str, Any], where: str) -> SettingsFile:
    """The file as a typed model; refuses a settings file with an unknown key, a missing
    required key or a value of the wrong type: a :class:`ContentError` naming ``where`` (the
    file), the key's path (``ehr[1].auth_metod``) and what to write instead."""
    try:
        return SettingsFile.model_validate(dict(data))
    except ValidationError as exc:
        # The first problem, in the order the models list their keys: one fix at a time,
        # as the hand-written checks after this one report theirs.
        error = exc.errors()[0]
        path, model = _path(error["loc"])
        raise ContentError(where, path, _problem(error, model)) from None


def _path(loc: tuple[int | str, ...]) -> tuple[str, type[BaseModel] | None]:
    """The key path as the file would name it (``ehr[1].auth_method``), cut at the last
    key (an item of a list is reported as its list), and the model that key belongs to."""
    model: type[BaseModel] | None = SettingsFile
    owner: type[BaseModel] | None = None
    path, last = "", 0
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        if model is None:
            break
        path += f".{part}" if path else part
        last, owner = len(path), model
        model = _TABLES.get(part) if model is SettingsFile else None
    return path[:last], owner


#: The tables of the file, by their key at the top level.
_TABLES: dict[str, type[BaseModel]] = {
    "safety": SafetyTable,
    "rate_limits": RateLimitsTable,
    "theme": ThemeTable,
    "ehr": EhrTable,
}


def _problem(error: Any, model: type[BaseModel] | None) -> str:
    """What is wrong with the key, in the file's terms (never its value: it may be a
    secret)."""
    key = str(error["loc"][-1]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        known = list(model.model_fields) if model else []
        close = difflib.get_close_matches(key, known, n=1)
        if close:
            return f"is not a setting; did you mean {close[0]}?"
        return f"is not a setting here; the settings are {', '.join(known)}"
    if error["type"] == "missing":
        return "is required"
    field = model.model_fields.get(_last_key(error["loc"])) if model else None
    expected = field.description if field is not None and field.description else "valid"
    return f"must be {expected}, not {_toml_type(error.get('input'))}"


def _last_key(loc: tuple[int | str, ...]) -> str:
    """The last key name in a pydantic location (not a list index)."""
    return next((str(p) for p in reversed(loc) if isinstance(p, str)), "")


def _toml_type(value: Any) -> str:
    """The TOML type of ``value``, to say what was found without quoting it."""
    for kind, name in (
        (bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
        (list, "an array"), (Mapping, "a table"),
    ):  # fmt: skip
        if isinstance(value, kind):
            return name
    return type(value).__name__
