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
    crisis_protocol_url = "https://intranet.example/crisis"   # for care professionals' pages

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

    [theme]                       # the practice's look on every page (default: calm, warm)
    name = "Praktijk De Linde"    # in the header (default: practice_name)
    logo = "linde.svg"            # .png .jpg .webp .svg, at most 256 kB; the app serves it
    primary = "#2a6658"           # buttons and links; background: the page ("#faf6f0");
    background = "#faf6f0"        # each checked for WCAG AA contrast (4.5:1) with its text

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
    id_token_nonce = "echo"       # the id_token must echo our nonce: always in SMART; mode
                                  # koppeltaal: "any" (default: the reference auth service puts
                                  # its own; state, PKCE and the HTI jti stop replays) | "echo"
    koppeltaal_results = false    # mode koppeltaal: a DocumentReference per completed Task
    summary_to_ehr = false        # mode smart: the session summary to the EHR on request
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
Each ``[[ehr]]`` then becomes one frozen :class:`Ehr` (``Settings.ehrs``, ``Settings.ehr``):
its launch, the worker's writes, its practice, safety owner, framers and machine callers.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from limits import parse_many

from fhir_burnout._origins import frame_origins, loopback
from fhir_burnout._settings_file import EhrTable, RateLimitsTable, SafetyTable, check_file
from fhir_burnout._theme import Theme
from fhir_burnout.errors import ContentError
from fhir_burnout.smart_launch import (
    ID_TOKEN_NONCES,
    MODES,
    AuthMethod,
    IdTokenNonce,
    IntegrationMode,
    current_private_key,
)

AUTH_METHODS = ("none", "client_secret_basic", "private_key_jwt")
WRITES = ("backend", "user")
KOPPELTAAL_ALGS = ("RS512", "RS384", "ES384")


Writes = Literal["backend", "user"]


@dataclass(frozen=True)
class Ehr:
    """One ``[[ehr]]``: an EHR the practice connected, with every value that belongs to it
    (how it launches the app, how the worker writes to it, the practice and its people).
    The one per-EHR configuration object of the skeleton (docs/architecture.md, "The seam
    where an EHR connects"); it is a ``smart_launch.LaunchClient``."""

    fhir_base: str  # stored without a trailing slash
    client_id: str
    _: KW_ONLY
    #: how this EHR connects: SMART App Launch + SDC, or Koppeltaal 2.0 (``mode``)
    mode: IntegrationMode = "smart"
    auth_method: AuthMethod = "none"
    client_secret: str | None = field(default=None, repr=False)
    private_jwk: dict[str, Any] | None = field(default=None, repr=False)
    #: the identity and resource scopes to ask per role, where the EHR registered others than
    #: the app's defaults; None: the defaults
    scopes_practitioner: str | None = None
    scopes_patient: str | None = None
    #: ask ``offline_access`` (true), never (false), or as the role needs it (None)
    offline_access: bool | None = None
    #: how the worker writes: "backend" (SMART Backend Services) or "user" (the tokens of
    #: the person whose action caused the write)
    writes: Writes = "backend"
    #: the worker's Backend Services client (``backend_client_id``; "": ``client_id``), its
    #: key (``backend_private_key``, else the app's own) and scope (``backend_scope``)
    worker_client_id: str = ""
    worker_private_jwk: dict[str, Any] | None = field(default=None, repr=False)
    worker_scope: str = "system/*.cruds"
    #: Koppeltaal: the client assertion's algorithm (``koppeltaal_alg``; None: the key's
    #: ``alg``, else the adapter's default, RS512)
    assertion_alg: str | None = None
    #: Koppeltaal: must the id_token echo our nonce (``id_token_nonce``: "echo"), or may it
    #: carry the auth service's own ("any"; None: the mode's default, any for Koppeltaal)
    id_token_nonce: IdTokenNonce | None = None
    #: Koppeltaal: publish a DocumentReference (draft T029) linking to our results summary
    #: when a KT Task is completed (``koppeltaal_results``)
    results: bool = False
    summary_to_ehr: bool = False  # the session summary to the EHR (a DocumentReference)
    #: the practice the app writes for (Provenance), its name and phone number as
    #: waiting-list clients read them (they have no care professional of their own yet)
    practice: str | None = None
    practice_name: str | None = None
    practice_phone: str | None = None
    #: a new referral waits for a care professional's triage (``referral_triage``); false:
    #: it is enrolled on the waiting list at once, with an invitation
    triage: bool = True
    #: who owns the safety signals of clients without their own care professional: a
    #: PractitionerRole or CareTeam (``Settings.check_safety`` requires one)
    safety_owner: str | None = None
    #: origins whose pages may show the app in an iframe; none: nobody may
    frame_ancestors: tuple[str, ...] = ()
    #: the machine callers whose tokens from this EHR's authorization server the app's APIs
    #: take; none by default, so no machine caller is taken until the practice names it
    api_clients: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fhir_base", self.fhir_base.rstrip("/"))
        if not self.worker_client_id:
            object.__setattr__(self, "worker_client_id", self.client_id)

    @property
    def nonce_echoed(self) -> bool:
        """The id_token must echo the launch's nonce: always in SMART mode; in Koppeltaal
        mode only with ``id_token_nonce = "echo"`` (issue 19)."""
        return self.mode == "smart" or self.id_token_nonce == "echo"  # noqa: S105 - no password

    @property
    def user_writes(self) -> bool:
        """The worker writes with the launching person's tokens, so the launch asks the
        write scopes those writes need."""
        return self.writes == "user"


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

    @classmethod
    def from_file(
        cls, storage: str | None, table: RateLimitsTable | None, where: str
    ) -> RateLimits:
        """The limits of a checked file's ``rate_limit_storage`` and ``[rate_limits]``
        (``_settings_file`` has refused unknown keys and non-strings); a limit that
        Flask-Limiter cannot read stops the app with its key."""
        found = table.model_dump(exclude_none=True) if table is not None else {}
        for key, value in found.items():
            try:
                if value and not parse_many(value):
                    raise ValueError(value)
            except ValueError:
                raise ContentError(
                    where, f"rate_limits.{key}", 'write e.g. "30/minute" or "" (off)'
                ) from None
        storage = _given(storage, "memory://")
        if "://" not in storage:
            raise ContentError(where, "rate_limit_storage", 'e.g. "memory://" or "redis://.."')
        return cls(storage=storage, **found)


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to run."""

    base_url: str
    database_url: str
    secret_key: str = field(repr=False)
    token_key: str = field(repr=False)
    #: every [[ehr]], in config order: the only per-EHR state (``ehr``, ``ehrs_in``)
    ehrs: tuple[Ehr, ...] = ()
    default_ehr: str | None = None
    keys_dir: Path = Path("keys")
    #: the project root with content/ and questionnaires/ (None: this checkout)
    content_root: Path | None = None
    #: seconds between reconciliation polls of referrals per EHR (0: only when notified)
    referral_poll_seconds: float = 300.0
    #: what the practice promises about safety signals ([safety] promise_nl, promise_en)
    safety_promise: SafetyPromise | None = None
    #: the practice's name, for waiting-list clients (None: "de praktijk")
    practice_name: str | None = None
    #: how often the app's doors may be knocked on (``[rate_limits]``, ``rate_limit_storage``)
    rate_limits: RateLimits = RateLimits()
    #: reverse proxies whose X-Forwarded-For is believed (``trusted_proxies``; 0: none)
    trusted_proxies: int = 0
    #: launches started and not back yet, for all browsers together (``pending_launches_max``)
    pending_launches_max: int = 10_000
    #: the practice's name, logo and colours on every page (``[theme]``; ``_theme``)
    theme: Theme = field(default_factory=Theme)
    crisis_protocol_url: str | None = None  # linked on care professionals' pages (http(s))

    def ehr(self, fhir_base: str) -> Ehr:
        """The [[ehr]] whose FHIR base is ``fhir_base`` (a trailing slash or not)."""
        wanted = fhir_base.rstrip("/")
        for ehr in self.ehrs:
            if ehr.fhir_base == wanted:
                return ehr
        raise ContentError("config", "ehr", f"no [[ehr]] with fhir_base = {wanted!r}")

    def ehrs_in(self, mode: IntegrationMode) -> tuple[Ehr, ...]:
        """The EHRs connected in ``mode``, in config order."""
        return tuple(ehr for ehr in self.ehrs if ehr.mode == mode)

    def safety_owner(self, fhir_base: str) -> str | None:
        """The configured owner of safety signals for clients of the EHR at ``fhir_base``."""
        wanted = fhir_base.rstrip("/")
        return next((e.safety_owner for e in self.ehrs if e.fhir_base == wanted), None)

    def framing_origins(self) -> tuple[str, ...]:
        """Every origin that may frame the app's pages, each once, in config order."""
        return tuple(dict.fromkeys(o for ehr in self.ehrs for o in ehr.frame_ancestors))

    def api_client_allowed(self, fhir_base: str, client_id: str) -> bool:
        """Whether ``client_id`` may call the app's APIs for the EHR at ``fhir_base``."""
        wanted = fhir_base.rstrip("/")
        return any(e.fhir_base == wanted and client_id in e.api_clients for e in self.ehrs)

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
        for i, ehr in enumerate(self.ehrs):
            base, owner = ehr.fhir_base, ehr.safety_owner
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

    def __post_init__(self) -> None:
        if self.default_ehr is None and self.ehrs:
            object.__setattr__(self, "default_ehr", self.ehrs[0].fhir_base)
        base = urlsplit(self.base_url)
        if self.framing_origins() and base.scheme != "https" and not loopback(base.hostname):
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
        ehrs = tuple(reader.read(i, table) for i, table in enumerate(file.ehr))
        theme = Theme.from_file(
            file.theme.model_dump(exclude_none=True) if file.theme else {},
            where=where, base_dir=base_dir, default_name=file.practice_name or None,
        )  # fmt: skip
        link = _text(file.crisis_protocol_url)
        if link and urlsplit(link).scheme not in ("http", "https"):
            raise ContentError(where, "crisis_protocol_url", "must be an http(s) URL")
        return cls(
            base_url=value("base_url").rstrip("/"),
            database_url=env.get("FHIR_BURNOUT_DATABASE_URL")
            or _given(file.database_url, "sqlite:///fhir-burnout.db"),
            secret_key=value("secret_key"),
            token_key=value("token_key"),
            ehrs=ehrs,
            default_ehr=file.default_ehr or (ehrs[0].fhir_base if ehrs else None),
            keys_dir=keys_dir,
            content_root=base_dir / file.content_root if file.content_root is not None else None,
            referral_poll_seconds=float(poll_seconds),
            safety_promise=_promise(file.safety),
            practice_name=file.practice_name or None,
            rate_limits=RateLimits.from_file(file.rate_limit_storage, file.rate_limits, where),
            trusted_proxies=_count(file.trusted_proxies, 0, "trusted_proxies", where),
            pending_launches_max=_count(
                file.pending_launches_max, 10_000, "pending_launches_max", where
            ),
            theme=theme,
            crisis_protocol_url=link,
        )


_T = TypeVar("_T")


@dataclass(frozen=True)
class _EhrReader:
    """Builds each ``[[ehr]]``'s :class:`Ehr` from its validated table, in named steps; each
    step checks what a value means (a mode, an origin, a key file) and names the key's path."""

    where: str
    base_dir: Path
    keys_dir: Path
    triage: bool  # the top-level referral_triage, each EHR's default

    def read(self, i: int, table: EhrTable) -> Ehr:
        """The EHR of ``ehr[i]``, checked in the order the keys are documented."""
        callers = self._api_clients(i, table)
        framers = frame_origins(_given(table.frame_ancestors, []), self.where, i)
        ehr = self._worker_side(i, table, self._launch_side(i, table))
        return replace(
            ehr,
            practice=table.practice,
            practice_name=_text(table.practice_name),
            practice_phone=_text(table.practice_phone),
            triage=_given(table.referral_triage, self.triage),
            summary_to_ehr=_given(table.summary_to_ehr, False),
            safety_owner=table.safety_owner or None,
            frame_ancestors=tuple(framers),
            api_clients=tuple(callers),
        )

    def _api_clients(self, i: int, table: EhrTable) -> list[str]:
        """The machine callers' client ids, stripped."""
        callers = _given(table.api_clients, [])
        if not all(c.strip() for c in callers):
            raise ContentError(self.where, f"ehr[{i}].api_clients", "must be a list of client ids")
        return [c.strip() for c in callers]

    def _launch_side(self, i: int, table: EhrTable) -> Ehr:
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
        nonce = table.id_token_nonce
        if nonce is not None and (
            nonce not in ID_TOKEN_NONCES or (mode, nonce) == ("smart", "any")
        ):
            raise ContentError(  # a SMART launch has no HTI jti to stand in for the nonce
                self.where, f"ehr[{i}].id_token_nonce",
                f'use one of {ID_TOKEN_NONCES} ("any" only with mode = "koppeltaal")',
            )  # fmt: skip
        return Ehr(
            fhir_base=table.fhir_base,
            client_id=table.client_id,
            mode=mode,
            auth_method=cast(AuthMethod, method),
            client_secret=table.client_secret,
            private_jwk=private_jwk,
            scopes_practitioner=_scopes(
                table.scopes_practitioner, f"ehr[{i}].scopes_practitioner"
            ),
            scopes_patient=_scopes(table.scopes_patient, f"ehr[{i}].scopes_patient"),
            offline_access=table.offline_access,
            id_token_nonce=nonce,
        )

    def _worker_side(self, i: int, table: EhrTable, ehr: Ehr) -> Ehr:
        """How the sync worker writes to the EHR: its credentials and algorithm."""
        alg = table.koppeltaal_alg
        if alg is not None and alg not in KOPPELTAAL_ALGS:
            raise ContentError(
                self.where, f"ehr[{i}].koppeltaal_alg", f"use one of {KOPPELTAAL_ALGS}"
            )
        worker_key = None
        if table.backend_private_key:
            worker_key = _jwk(self.base_dir / table.backend_private_key)
        worker_key = worker_key or current_private_key(self.keys_dir)
        # Without a key the worker cannot use Backend Services, so a SMART EHR gets the
        # people's own authorisation by default; a Koppeltaal domain has only backend
        # writes (its module key: koppeltaal/), and says so when the key is missing.
        by_user = not worker_key and ehr.mode == "smart"
        writes = table.writes or ("user" if by_user else "backend")
        if writes not in WRITES or (writes == "user" and ehr.mode != "smart"):
            raise ContentError(
                self.where, f"ehr[{i}].writes",
                f"use one of {WRITES} (user only with mode = \"smart\")",
            )  # fmt: skip
        return replace(
            ehr,
            writes=cast(Writes, writes),
            worker_client_id=table.backend_client_id or table.client_id,
            worker_private_jwk=worker_key,
            worker_scope=_given(table.backend_scope, "system/*.cruds"),
            assertion_alg=alg,
            results=_given(table.koppeltaal_results, False),
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
