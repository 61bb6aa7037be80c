"""The app's settings: one TOML file (``FHIR_BURNOUT_CONFIG``) with environment overrides.

Read in one place, by the CLI or the app factory, never at import time::

    base_url = "https://burnout.example-practice.nl"
    database_url = "sqlite:///fhir-burnout.db"
    secret_key = "..."            # signs the browser session cookie
    token_key = "..."             # Fernet key: tokens are encrypted at rest with it
    keys_dir = "keys"             # the app's signing keys (fhir-burnout keys)
    content_root = "."            # holds content/ and questionnaires/ (default: this checkout)
    default_ehr = "https://ehr.example.nl/fhir"   # for standalone /login
    referral_poll_seconds = 300   # the reconciliation poll of referrals (0: only when notified)
    referral_triage = true        # a referral waits for a care professional's decision
                                  # (false: enrolled on the waiting list at once, invited)
    practice_name = "Praktijk De Linde"   # default for every [[ehr]] (default: de praktijk)
    rate_limit_storage = "memory://"      # the rate-limit counters: memory:// counts per
                                  # process (each gunicorn worker apart); redis://host:6379
                                  # counts for all workers and hosts (pip extra "redis")
    trusted_proxies = 0           # reverse proxies in front of the app whose
                                  # X-Forwarded-For names the client's address (0: none)
    pending_launches_max = 10000  # launches started and not yet back, for all browsers

    [rate_limits]                 # per client address, in Flask-Limiter's notation
                                  # ("30/minute;500/day"); "" switches one off
    launch = "30/minute"          # /login, /launch, /koppeltaal/launch
    callback = "30/minute"        # /callback, /koppeltaal/callback
    invitation = "10/minute"      # /invite/<code>, a typed code: per address and per browser
    invitation_code = "50/day"    # ... and per code
    machine = "120/minute"        # $apply, /referrals, the notify endpoints: per client id
                                  # (its token's client_id; a notification: its EHR)
    machine_address = "600/minute"        # the same endpoints, per address

    [safety]                      # required: what the practice promises about safety signals
    promise_nl = "op werkdagen binnen één werkdag"
    promise_en = "within one working day, on working days"

    [[ehr]]
    fhir_base = "https://ehr.example.nl/fhir"
    client_id = "fhir-burnout"
    mode = "smart"                # smart (SMART App Launch + SDC) | koppeltaal (Koppeltaal 2.0)
    auth_method = "none"          # none | client_secret_basic | private_key_jwt
    client_secret = "..."         # client_secret_basic
    private_key = "keys/ehr.jwk"  # private_key_jwt: a JWK file (RS384 or ES384)
    practice = "Organization/123" # the practice, on whose behalf the app writes (Provenance)
    # Scopes (docs/launch.md): by default exactly what the app uses per role. Only where the
    # EHR registered the app with other scopes: its identity and resource scopes, per role
    # (the launch context and refresh scopes are added by the app):
    scopes_practitioner = "openid fhirUser user/Practitioner.rs user/PractitionerRole.rs"
    scopes_patient = "openid fhirUser patient/Patient.rs"
    offline_access = true         # ask a refresh token that outlives the EHR session: true |
                                  # false (default: for clients yes, for care professionals no)
    safety_owner = "PractitionerRole/7"   # required: owns the safety signals of clients
                                  # without their own care professional (or CareTeam/..)
    # How the sync worker writes to this EHR (mode smart):
    writes = "backend"            # backend: SMART Backend Services (client_credentials,
                                  # private_key_jwt); user: with the authorisation of the
                                  # person whose action caused the write (their launch's
                                  # tokens, kept until their writes are delivered; the launch
                                  # then asks the write scopes too). Default: backend when
                                  # the worker has a key (backend_private_key or the app's
                                  # own, fhir-burnout keys), else user.
    backend_client_id = "fhir-burnout-worker"     # default: client_id
    backend_private_key = "keys/worker.jwk"       # default: the app's own current key
    backend_scope = "system/*.cruds"
    koppeltaal_alg = "RS512"      # mode koppeltaal: RS512 (default) | RS384 | ES384
    koppeltaal_results = false    # mode koppeltaal: a DocumentReference per completed Task
    referral_triage = false       # this EHR's referrals only (default: the top-level value)
    practice_name = "Praktijk De Linde"   # named to waiting-list clients: whom to call
    practice_phone = "030 123 45 67"      # (optional) the practice's number for them
    frame_ancestors = ["https://ehr.example.nl"]  # origins whose pages may show the app in
                                  # an iframe (default: none); needs an https base_url
                                  # (http only on this machine): docs/embedding.md
    api_clients = ["referral-system"]     # the machine callers of $apply and POST /referrals:
                                  # client ids of this EHR's authorization server whose
                                  # system/ tokens for our base_url are taken (default: none)

Environment overrides: FHIR_BURNOUT_BASE_URL, FHIR_BURNOUT_DATABASE_URL,
FHIR_BURNOUT_SECRET_KEY, FHIR_BURNOUT_TOKEN_KEY.

The file is checked against these keys before it is used (``_settings_file``): a key not
listed here (``auth_metod``), an ``[[ehr]]`` without ``fhir_base`` or ``client_id``, or a
value of the wrong TOML type stops the app with the file, the key's path and the fix
(``fhir-burnout.toml: ehr[1].auth_metod: is not a setting; did you mean auth_method?``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from limits import parse_many

from fhir_burnout._settings_file import EhrTable, SafetyTable, check_file
from fhir_burnout.errors import ContentError
from fhir_burnout.smart_launch import (
    MODES,
    AuthMethod,
    IntegrationMode,
    TrustedEhr,
    current_private_key,
)

AUTH_METHODS = ("none", "client_secret_basic", "private_key_jwt")
WRITES = ("backend", "user")
KOPPELTAAL_ALGS = ("RS512", "RS384", "ES384")


@dataclass(frozen=True)
class Backend:
    """How the sync worker writes to one EHR: SMART Backend Services credentials and the
    practice it writes for."""

    fhir_base: str
    client_id: str
    private_jwk: dict[str, Any] | None = field(default=None, repr=False)
    scope: str = "system/*.cruds"
    practice: str | None = None
    mode: IntegrationMode = "smart"
    #: Koppeltaal: the client assertion's algorithm (``koppeltaal_alg``; None: the key's
    #: ``alg``, else RS512)
    alg: str | None = None
    #: Koppeltaal: publish a DocumentReference (draft T029) linking to our results summary
    #: when a KT Task is completed (``koppeltaal_results``; see koppeltaal/_results.py)
    results: bool = False
    #: a new referral waits for a care professional's triage (``referral_triage``, default
    #: true); false: it is enrolled on the waiting list at once, with an invitation
    triage: bool = True
    #: the practice's name and phone number, as waiting-list clients read them (they have
    #: no care professional of their own yet: the practice is whom they call)
    practice_name: str | None = None
    practice_phone: str | None = None
    #: how the worker writes: "backend" (SMART Backend Services) or "user" (the tokens of
    #: the person whose action caused the write; ``writes``)
    writes: str = "backend"


#: What a safety owner may be: a role or a team, named people rather than an organisation.
SAFETY_OWNER_TYPES = ("PractitionerRole/", "CareTeam/")


@dataclass(frozen=True)
class SafetyPromise:
    """When the practice reads safety signals, in Dutch and English ("op werkdagen binnen
    één werkdag"); the client reads it after a worrying answer, with crisis help first."""

    nl: str
    en: str

    def text(self, lang: str) -> str:
        """The promise in ``lang`` (English for English, else Dutch)."""
        return self.en if lang == "en" else self.nl


class SafetyConfigError(ContentError):
    """The config does not say who owns safety signals or what the practice promises: the
    app and the worker refuse to start without them (issue 16: nobody may be promised what
    nobody keeps)."""


@dataclass(frozen=True)
class RateLimits:
    """How often one address, browser, invitation code or API client may call the app's
    doors (web._rate_limits), in Flask-Limiter's notation; "" switches a limit off."""

    storage: str = "memory://"
    launch: str = "30/minute"
    callback: str = "30/minute"
    invitation: str = "10/minute"
    invitation_code: str = "50/day"
    machine: str = "120/minute"
    machine_address: str = "600/minute"

    #: the [rate_limits] keys, as the config names them
    KEYS = ("launch", "callback", "invitation", "invitation_code", "machine", "machine_address")

    @classmethod
    def from_mapping(cls, storage: Any, table: Any, where: str) -> RateLimits:
        """The limits of a config's ``rate_limit_storage`` and ``[rate_limits]``; a limit
        that Flask-Limiter cannot read stops the app with its key."""
        if not isinstance(table, Mapping):
            raise ContentError(where, "rate_limits", "must be a table of limits")
        found: dict[str, str] = {}
        for key, value in table.items():
            if key not in cls.KEYS:
                raise ContentError(where, f"rate_limits.{key}", f"use one of {cls.KEYS}")
            try:
                if not isinstance(value, str) or (value and not parse_many(value)):
                    raise ValueError(value)
            except ValueError:
                raise ContentError(
                    where, f"rate_limits.{key}", 'write e.g. "30/minute" or "" (off)'
                ) from None
            found[key] = value
        if not isinstance(storage, str) or "://" not in storage:
            raise ContentError(where, "rate_limit_storage", 'e.g. "memory://" or "redis://.."')
        return cls(storage=storage, **found)


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to run."""

    base_url: str
    database_url: str
    secret_key: str = field(repr=False)
    token_key: str = field(repr=False)
    ehrs: tuple[TrustedEhr, ...] = ()
    default_ehr: str | None = None
    keys_dir: Path = Path("keys")
    backends: tuple[Backend, ...] = ()
    #: the project root with content/ and questionnaires/ (None: this checkout)
    content_root: Path | None = None
    #: seconds between reconciliation polls of referrals per EHR (0: only when notified)
    referral_poll_seconds: float = 300.0
    #: what the practice promises about safety signals ([safety] promise_nl, promise_en)
    safety_promise: SafetyPromise | None = None
    #: per EHR (fhir_base): who owns the safety signals of clients without their own care
    #: professional (``safety_owner`` in its [[ehr]]): a PractitionerRole or CareTeam
    safety_owners: tuple[tuple[str, str], ...] = ()
    #: the practice's name, for waiting-list clients (None: "de praktijk")
    practice_name: str | None = None
    #: per EHR (fhir_base): an origin whose pages may show the app in an iframe
    #: (``frame_ancestors`` in its [[ehr]]; one pair per origin); none: nobody may
    frame_ancestors: tuple[tuple[str, str], ...] = ()

    def framing_origins(self) -> tuple[str, ...]:
        """Every origin that may frame the app's pages, each once, in config order."""
        return tuple(dict.fromkeys(origin for _, origin in self.frame_ancestors))

    #: per EHR (fhir_base, client_id): the machine callers whose tokens from that EHR's
    #: authorization server the app's APIs take (``api_clients`` in its [[ehr]]); none by
    #: default, so no machine caller is taken until the practice names it
    api_clients: tuple[tuple[str, str], ...] = ()

    def api_client_allowed(self, fhir_base: str, client_id: str) -> bool:
        """Whether ``client_id`` may call the app's APIs for the EHR at ``fhir_base``."""
        return (fhir_base.rstrip("/"), client_id) in {
            (base.rstrip("/"), client) for base, client in self.api_clients
        }

    #: how often the app's doors may be knocked on (``[rate_limits]``, ``rate_limit_storage``)
    rate_limits: RateLimits = RateLimits()
    #: reverse proxies whose X-Forwarded-For is believed (``trusted_proxies``; 0: none)
    trusted_proxies: int = 0
    #: launches started and not back yet, for all browsers together (``pending_launches_max``)
    pending_launches_max: int = 10_000

    def safety_owner(self, fhir_base: str) -> str | None:
        """The configured owner of safety signals for clients of the EHR at ``fhir_base``."""
        wanted = fhir_base.rstrip("/")
        return next((o for base, o in self.safety_owners if base.rstrip("/") == wanted), None)

    def check_safety(self) -> None:
        """Refuse to run without a safety promise and an owner per EHR: raises
        :class:`SafetyConfigError` naming the first missing key."""
        where = "config"
        if self.safety_promise is None or not self.safety_promise.nl:
            raise SafetyConfigError(
                where, "safety.promise_nl",
                'is required: when the practice reads safety signals, e.g. '
                '"op werkdagen binnen één werkdag"',
            )  # fmt: skip
        if not self.safety_promise.en:
            raise SafetyConfigError(
                where, "safety.promise_en",
                'is required: the promise in English, e.g. "within one working day, on '
                'working days"',
            )  # fmt: skip
        bases = [e.fhir_base for e in self.ehrs] + [b.fhir_base for b in self.backends]
        for i, base in enumerate(dict.fromkeys(b.rstrip("/") for b in bases)):
            owner = self.safety_owner(base)
            if not owner:
                raise SafetyConfigError(
                    where, f"ehr[{i}].safety_owner",
                    f"is required for {base}: the PractitionerRole/.. or CareTeam/.. who owns "
                    "the safety signals of clients without their own care professional",
                )  # fmt: skip
            if not owner.startswith(SAFETY_OWNER_TYPES):
                raise SafetyConfigError(
                    where, f"ehr[{i}].safety_owner",
                    f"{owner!r} must be a PractitionerRole/.. or CareTeam/.. reference",
                )  # fmt: skip

    def backend(self, fhir_base: str) -> Backend:
        """The worker's credentials for the EHR at ``fhir_base``."""
        wanted = fhir_base.rstrip("/")
        for backend in self.backends:
            if backend.fhir_base.rstrip("/") == wanted:
                return backend
        raise ContentError("config", "ehr", f"no [[ehr]] with fhir_base = {wanted!r}")

    def __post_init__(self) -> None:
        if self.default_ehr is None and self.ehrs:
            object.__setattr__(self, "default_ehr", self.ehrs[0].fhir_base)
        base = urlsplit(self.base_url)
        if self.frame_ancestors and base.scheme != "https" and not _loopback(base.hostname):
            # A cross-site frame gets its cookie back only if it is SameSite=None, which
            # browsers accept only with Secure, i.e. over https (RFC 6265bis 5.6.7).
            raise ContentError(
                "config", "frame_ancestors",
                f"framing by {', '.join(self.framing_origins())} needs an https base_url; "
                f"{self.base_url} is plain http (allowed only on this machine, for tests)",
            )  # fmt: skip

    @classmethod
    def from_file(cls, path: str | Path, env: Mapping[str, str] | None = None) -> Settings:
        """Read a TOML config file; environment variables override single values."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ContentError(str(path), "", "config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ContentError(str(path), "", f"invalid TOML: {exc}") from None
        return cls.from_mapping(data, base_dir=path.parent, env=env, where=str(path))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the file named by FHIR_BURNOUT_CONFIG."""
        env = os.environ if env is None else env
        path = env.get("FHIR_BURNOUT_CONFIG")
        if not path:
            raise ContentError("FHIR_BURNOUT_CONFIG", "", "not set: name the config file")
        return cls.from_file(path, env)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        base_dir: Path = Path(),
        env: Mapping[str, str] | None = None,
        where: str = "config",
    ) -> Settings:
        """Settings from a parsed config (and overrides); ``where`` names the file in errors."""
        env = os.environ if env is None else env
        # Unknown, missing and mistyped keys first, named with their path (_settings_file);
        # what follows reads typed values and checks only what they mean.
        file = check_file(data, where)

        def value(key: str) -> str:
            found = env.get(f"FHIR_BURNOUT_{key.upper()}") or data.get(key)
            if not found:
                raise ContentError(where, key, "is required")
            return str(found)

        keys_dir = base_dir / _given(file.keys_dir, "keys")
        poll_seconds = _given(file.referral_poll_seconds, 300.0)
        if poll_seconds < 0:
            raise ContentError(where, "referral_poll_seconds", "must be 0 (off) or more")
        reader = _EhrReader(where, base_dir, keys_dir, _given(file.referral_triage, True))
        parts = [reader.read(i, table) for i, table in enumerate(file.ehr)]
        ehrs = tuple(p.ehr for p in parts)
        return cls(
            base_url=value("base_url").rstrip("/"),
            database_url=env.get("FHIR_BURNOUT_DATABASE_URL")
            or _given(file.database_url, "sqlite:///fhir-burnout.db"),
            secret_key=value("secret_key"),
            token_key=value("token_key"),
            ehrs=ehrs,
            default_ehr=file.default_ehr or (ehrs[0].fhir_base if ehrs else None),
            keys_dir=keys_dir,
            backends=tuple(p.backend for p in parts),
            content_root=base_dir / file.content_root if file.content_root is not None else None,
            referral_poll_seconds=float(poll_seconds),
            safety_promise=_promise(file.safety),
            safety_owners=tuple(owner for p in parts for owner in p.safety_owners),
            practice_name=file.practice_name or None,
            frame_ancestors=tuple(framer for p in parts for framer in p.frame_ancestors),
            api_clients=tuple(client for p in parts for client in p.api_clients),
            rate_limits=RateLimits.from_mapping(
                data.get("rate_limit_storage", "memory://"), data.get("rate_limits", {}), where
            ),
            trusted_proxies=_count(file.trusted_proxies, 0, "trusted_proxies", where),
            pending_launches_max=_count(
                file.pending_launches_max, 10_000, "pending_launches_max", where
            ),
        )


_T = TypeVar("_T")


@dataclass(frozen=True)
class _EhrParts:
    """What one ``[[ehr]]`` adds to the settings: the EHR the app trusts, how the worker
    writes to it, and its (fhir_base, value) pairs of owners, framing origins and callers."""

    ehr: TrustedEhr
    backend: Backend
    safety_owners: list[tuple[str, str]]
    frame_ancestors: list[tuple[str, str]]
    api_clients: list[tuple[str, str]]


@dataclass(frozen=True)
class _EhrReader:
    """Builds each ``[[ehr]]``'s parts from its validated table, in named steps; each step
    checks what a value means (a mode, an origin, a key file) and names the key's path."""

    where: str
    base_dir: Path
    keys_dir: Path
    triage: bool  # the top-level referral_triage, each EHR's default

    def read(self, i: int, table: EhrTable) -> _EhrParts:
        """The parts of ``ehr[i]``, checked in the order the keys are documented."""
        base = table.fhir_base.rstrip("/")
        callers = self._api_clients(i, table)
        owners = [(base, table.safety_owner)] if table.safety_owner else []
        framers = [
            (base, origin)
            for origin in _frame_origins(_given(table.frame_ancestors, []), self.where, i)
        ]
        ehr = self._trusted_ehr(i, table)
        backend = self._backend(i, table, ehr.mode)
        if backend.writes == "user":
            ehr = replace(ehr, user_writes=True)
        return _EhrParts(ehr, backend, owners, framers, [(base, c) for c in callers])

    def _api_clients(self, i: int, table: EhrTable) -> list[str]:
        """The machine callers' client ids, stripped."""
        callers = _given(table.api_clients, [])
        if not all(isinstance(c, str) and c.strip() for c in callers):
            raise ContentError(self.where, f"ehr[{i}].api_clients", "must be a list of client ids")
        return [c.strip() for c in callers]

    def _trusted_ehr(self, i: int, table: EhrTable) -> TrustedEhr:
        """The EHR whose launches the app takes: its mode, client authentication and
        scopes."""
        mode = _given(table.mode, "smart")
        if mode not in MODES:
            raise ContentError(self.where, f"ehr[{i}].mode", f"use one of {MODES}")
        method = _given(table.auth_method, "none")
        if method not in AUTH_METHODS:
            raise ContentError(self.where, f"ehr[{i}].auth_method", f"use one of {AUTH_METHODS}")
        private_jwk = None
        if table.private_key:
            private_jwk = _jwk(self.base_dir / table.private_key)
        elif method == "private_key_jwt":
            # The app's own current key (fhir-burnout keys), published in its JWKS.
            private_jwk = current_private_key(self.keys_dir)
            if private_jwk is None:
                raise ContentError(
                    self.where, f"ehr[{i}]", "private_key_jwt needs a key: run fhir-burnout keys"
                )
        return TrustedEhr(
            fhir_base=table.fhir_base,
            client_id=table.client_id,
            auth_method=cast(AuthMethod, method),
            client_secret=table.client_secret,
            private_jwk=private_jwk,
            mode=mode,
            scopes_practitioner=_scopes(
                table.scopes_practitioner, f"ehr[{i}].scopes_practitioner"
            ),
            scopes_patient=_scopes(table.scopes_patient, f"ehr[{i}].scopes_patient"),
            offline_access=table.offline_access,
        )

    def _backend(self, i: int, table: EhrTable, mode: IntegrationMode) -> Backend:
        """How the sync worker writes to the EHR: its credentials and the practice."""
        alg = table.koppeltaal_alg
        if alg is not None and alg not in KOPPELTAAL_ALGS:
            raise ContentError(
                self.where, f"ehr[{i}].koppeltaal_alg", f"use one of {KOPPELTAAL_ALGS}"
            )
        backend_key = None
        if table.backend_private_key:
            backend_key = _jwk(self.base_dir / table.backend_private_key)
        backend_key = backend_key or current_private_key(self.keys_dir)
        # Without a key the worker cannot use Backend Services, so a SMART EHR gets the
        # people's own authorisation by default; a Koppeltaal domain has only backend
        # writes (its module key: koppeltaal/), and says so when the key is missing.
        by_user = not backend_key and mode == "smart"
        writes = table.writes or ("user" if by_user else "backend")
        if writes not in WRITES or (writes == "user" and mode != "smart"):
            raise ContentError(
                self.where, f"ehr[{i}].writes",
                f"use one of {WRITES} (user only with mode = \"smart\")",
            )  # fmt: skip
        return Backend(
            fhir_base=table.fhir_base.rstrip("/"),
            client_id=table.backend_client_id or table.client_id,
            private_jwk=backend_key,
            scope=_given(table.backend_scope, "system/*.cruds"),
            practice=table.practice,
            mode=mode,
            alg=alg,
            results=_given(table.koppeltaal_results, False),
            triage=_given(table.referral_triage, self.triage),
            practice_name=_text(table.practice_name),
            practice_phone=_text(table.practice_phone),
            writes=writes,
        )


def _given(found: _T | None, default: _T) -> _T:
    """A setting's value, or ``default`` when the file leaves it out (TOML has no null, so
    None is always "not written"; a blank string is a value)."""
    return default if found is None else found


def _jwk(path: Path) -> dict[str, Any]:
    """A JWK from a key file."""
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def _scopes(found: str | None, key: str) -> str | None:
    """A scope override: space-separated scopes, without the launch context and refresh
    scopes the app adds itself."""
    if found is None:
        return None
    if not found.split():
        raise ContentError("config", key, "must be a string of scopes")
    added = [s for s in found.split() if s in ("launch", "launch/patient", "offline_access")]
    if added:
        raise ContentError(
            "config", key,
            f"leave out {' '.join(added)}: the app adds the launch context itself, and "
            "offline_access follows the offline_access setting",
        )  # fmt: skip
    return " ".join(found.split())


def _count(found: int | None, default: int, key: str, where: str) -> int:
    """A whole number of 0 or more; anything else stops the app with where it is."""
    found = _given(found, default)
    if found < 0:
        raise ContentError(where, key, "must be a whole number, 0 or more")
    return found


def _text(found: str | None) -> str | None:
    """An optional text setting (blank counts as not set)."""
    return found.strip() or None if found is not None else None


def _promise(table: SafetyTable | None) -> SafetyPromise | None:
    """The [safety] table's promise; None when it is missing (``check_safety`` says so)."""
    if table is None:
        return None
    return SafetyPromise(nl=table.promise_nl or "", en=table.promise_en or "")


#: An origin as CSP's frame-ancestors names one: scheme, host, optional port; nothing else
#: (no wildcard, quote, space or ';' that would change the policy around it).
_ORIGIN = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:]+\])(:[0-9]{1,5})?/?")


def _frame_origins(raw: Any, where: str, index: int) -> list[str]:
    """An [[ehr]]'s ``frame_ancestors``: a list of origins, lower-cased, without a trailing
    slash; anything else stops the app with the key and what is wrong."""
    key = f"ehr[{index}].frame_ancestors"
    if not isinstance(raw, list):
        raise ContentError(
            where, key, 'must be a list of origins, e.g. ["https://ehr.example.nl"]'
        )
    origins = []
    for item in raw:
        found = _ORIGIN.fullmatch(item.strip().lower()) if isinstance(item, str) else None
        if found is None or int((found[3] or ":443")[1:]) > 65535:
            raise ContentError(
                where, key,
                f"{item!r} is not an origin: write the scheme and host (and port) of the EHR's "
                'page, e.g. "https://ehr.example.nl", without a path',
            )  # fmt: skip
        scheme, host = found[1], found[2]
        if scheme == "http" and not _loopback(host.strip("[]")):
            raise ContentError(
                where, key,
                f"{item!r}: an EHR's page is https (plain http only on this machine, for tests)",
            )  # fmt: skip
        origins.append(f"{scheme}://{host}{found[3] or ''}")
    return origins


def _loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (localhost or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
