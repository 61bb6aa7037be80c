"""``fhir-burnout doctor``: check every configured EHR end to end, in plain words.

Per ``[[ehr]]`` (docs/launch.md, "fhir-burnout doctor"): SMART discovery (or the /metadata
fallback), the endpoints a launch needs, the app's client authentication, a Backend Services
token for the worker, one read with it, and the scopes granted or offered against what the
app asks. Nothing here prints a token, a secret or a key; what an EHR says is cut to a
sentence without control characters.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import requests

from fhir_burnout.cli._options import _settings, config_option
from fhir_burnout.settings import Ehr, Settings
from fhir_burnout.smart_launch import (
    ROLES,
    DiscoveryError,
    IdTokenError,
    SmartConfiguration,
    TokenRequestError,
    backend_token,
    discover,
    fetch_jwks,
    missing_purposes,
    probe_client_authentication,
    role_scopes,
    worker_scopes,
)

_UNSAFE = re.compile(r"[^\w .,:;()/'\-]")
ROLE_NAMES = {"practitioner": "care professionals", "patient": "clients"}


@dataclass(frozen=True)
class Finding:
    """One check's outcome: ``ok`` True (works), False (missing or broken) or None (cannot be
    checked from here; not a failure)."""

    ok: bool | None
    what: str
    said: str

    def line(self) -> str:
        """The finding as the report prints it."""
        mark = {True: "ok     ", False: "MISSING", None: "note   "}[self.ok]
        return f"  {mark} {self.what}: {self.said}"


def _quote(text: str) -> str:
    """An EHR's own words, safe to print: one short sentence."""
    return _UNSAFE.sub(" ", text)[:160].strip()


def _refusal(exc: TokenRequestError) -> str:
    said = f"{exc.error}" + (f" ({_quote(exc.description)})" if exc.description else "")
    return f"{said}, HTTP {exc.status}" if exc.status else said


def check_ehr(ehr: Ehr, session: requests.Session) -> Iterator[Finding]:
    """Every check for one EHR, in order; later checks are skipped when discovery fails."""
    try:
        config = discover(ehr.fhir_base, session)
    except DiscoveryError as exc:
        yield Finding(False, "discovery", f"nothing usable answers at {ehr.fhir_base}: {exc}")
        return
    if config.source == "metadata":
        yield Finding(
            True, "discovery",
            "fallback: no .well-known/smart-configuration, the endpoints come from /metadata "
            "(oauth-uris)",
        )  # fmt: skip
    else:
        yield Finding(True, "discovery", "found .well-known/smart-configuration")
    yield from _endpoints(config, session)
    yield _client_authentication(ehr, config, session)
    if ehr.mode == "smart":
        yield from _launch_scopes(ehr, config)
    yield from _worker_token(ehr, config, session)


def _endpoints(config: SmartConfiguration, session: requests.Session) -> Iterator[Finding]:
    yield Finding(
        True, "endpoints",
        f"authorize {config.authorization_endpoint}, token {config.token_endpoint}",
    )  # fmt: skip
    if config.source == "smart-configuration" and not config.supports_pkce_s256:
        yield Finding(False, "PKCE", "the EHR does not offer S256, so every launch is refused")
    if config.jwks_uri:
        try:
            fetch_jwks(config.jwks_uri, session)
        except IdTokenError as exc:
            yield Finding(False, "id_token keys", str(exc))
        else:
            yield Finding(True, "id_token keys", f"read from {config.jwks_uri}")
    else:
        yield Finding(
            None, "id_token keys",
            "the EHR names no jwks_uri: the app finds them in the OpenID configuration of the "
            "issuer each id_token names (on the token endpoint's own origin)",
        )  # fmt: skip


def _client_authentication(
    ehr: Ehr, config: SmartConfiguration, session: requests.Session
) -> Finding:
    what = f"client authentication ({ehr.client_id}, {ehr.auth_method})"
    if ehr.auth_method == "none":
        return Finding(
            None, what,
            "a public client: its registration (redirect URI, launch URLs, scopes) can only "
            "be checked at a real launch",
        )  # fmt: skip
    try:
        probe_client_authentication(ehr, config, session)
    except TokenRequestError as exc:
        if exc.error == "invalid_client":
            proof = "client secret" if ehr.auth_method == "client_secret_basic" else "key"
            return Finding(
                False, what,
                f"the EHR does not accept the app's {proof} for {ehr.client_id}: "
                f"{_refusal(exc)}",
            )  # fmt: skip
        if exc.error == "temporarily_unavailable" or (exc.status or 0) >= 500:
            return Finding(False, what, f"the token endpoint did not answer: {_refusal(exc)}")
        return Finding(
            True, what,
            f"credentials accepted (the test grant was refused as {exc.error}, which the EHR "
            "checks only after the credentials)",
        )  # fmt: skip
    return Finding(True, what, "credentials accepted")


def _launch_scopes(ehr: Ehr, config: SmartConfiguration) -> Iterator[Finding]:
    offered = config.raw.get("scopes_supported")
    for role in ROLES:
        asked = role_scopes(ehr, config, role, ehr_launch=True)
        what = f"scopes for {ROLE_NAMES[role]}"
        if not isinstance(offered, list):
            yield Finding(
                None, what,
                f"asks {asked.scope!r}; the EHR does not list the scopes it offers, so what it "
                "grants shows at the first launch",
            )  # fmt: skip
            continue
        lacking = missing_purposes(asked, " ".join(str(s) for s in offered))
        if lacking:
            yield Finding(
                False, what,
                f"the EHR does not offer what {', '.join(lacking)} needs (asks {asked.scope!r})",
            )  # fmt: skip
        else:
            yield Finding(True, what, f"the EHR offers all the app asks ({asked.scope!r})")


def _worker_token(
    ehr: Ehr, config: SmartConfiguration, session: requests.Session
) -> Iterator[Finding]:
    what = f"backend token ({ehr.worker_client_id})"
    if ehr.worker_private_jwk is None:
        yield Finding(False, what, "no key for the worker: run fhir-burnout keys")
        return
    try:
        token = backend_token(
            config.token_endpoint, ehr.worker_client_id, ehr.worker_private_jwk,
            ehr.worker_scope, session=session, alg=ehr.assertion_alg,
        )  # fmt: skip
    except TokenRequestError as exc:
        if exc.error == "invalid_client":
            said = (
                f"the EHR refused the worker's key ({_refusal(exc)}): register the app's "
                "public key (its JWKS, <base_url>/.well-known/jwks.json) for "
                f"{ehr.worker_client_id}"
            )
        else:
            said = f"the EHR refused the worker's token request: {_refusal(exc)}"
        yield Finding(False, what, said)
        return
    yield Finding(True, what, f"granted {token.scope or ehr.worker_scope!r}")
    yield _one_read(config, token.access_token, session)
    granted = (token.scope or ehr.worker_scope).split()
    lacking = missing_purposes(worker_scopes(), " ".join(granted))
    if lacking:
        yield Finding(False, "worker scopes", f"not granted, so no {'; no '.join(lacking)}")
    else:
        yield Finding(True, "worker scopes", "granted all the worker writes and reads")


def _one_read(config: SmartConfiguration, token: str, session: requests.Session) -> Finding:
    url = f"{config.fhir_base}/PractitionerRole?_count=1"
    what = "a read with the backend token"
    try:
        response = session.get(
            url, headers={"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"},
            timeout=30,
        )  # fmt: skip
    except requests.RequestException as exc:
        return Finding(False, what, f"the FHIR server did not answer ({type(exc).__name__})")
    if response.status_code == 200:
        return Finding(True, what, "PractitionerRole?_count=1 answered 200")
    reason = {401: "the FHIR server does not accept the worker's token",
              403: "the worker's token may not read PractitionerRole"}.get(
        response.status_code, "the FHIR server refused the read")  # fmt: skip
    return Finding(False, what, f"{reason} (HTTP {response.status_code})")


def report(settings: Settings, session: requests.Session) -> tuple[list[str], bool]:
    """The report's lines for every EHR, and whether everything works."""
    lines: list[str] = []
    healthy = True
    for ehr in settings.ehrs:
        lines.append(f"EHR {ehr.fhir_base} (client {ehr.client_id}, {ehr.mode})")
        for finding in check_ehr(ehr, session):
            lines.append(finding.line())
            healthy = healthy and finding.ok is not False
    if not settings.ehrs:
        lines.append("No [[ehr]] is configured: nothing can launch the app.")
        healthy = False
    lines.append("All is well." if healthy else "Something is missing: see MISSING above.")
    return lines, healthy


__all__ = ["Finding", "check_ehr", "report"]


@click.command()
@config_option
def doctor(config_path: Path) -> None:
    """Check every [[ehr]] end to end and say, in plain words, what works and what is
    missing (docs/launch.md); exit code 0 only when all is well."""
    settings = _settings(config_path)
    with requests.Session() as session:
        lines, healthy = report(settings, session)
    click.echo("\n".join(lines))
    sys.exit(0 if healthy else 1)
