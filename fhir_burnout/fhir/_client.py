"""A small FHIR R4 REST client over an injected ``requests.Session`` (FHIR R4 §3.1.0 RESTful API).

It does not retry writes: a write that may have reached the server is the outbox's to repeat
(requests documents the same for ``max_retries``). Errors carry the server's OperationOutcome.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol

import requests

from fhir_burnout.errors import FhirConnectionError, FhirServerError, ForeignUrlError

FHIR_JSON = "application/fhir+json"


class TokenSource(Protocol):
    """Where a client gets its bearer token (e.g. smart_launch.BackendTokenSource)."""

    def token(self) -> str: ...
    def invalidate(self) -> None: ...


class FhirClient:
    """Read, search (following paging), create, conditional create, update with If-Match."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session | None = None,
        token: str | None = None,
        token_source: TokenSource | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout = timeout
        self.token_source = token_source
        self.session.headers.update({"Accept": FHIR_JSON})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying session."""
        self.session.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path}"
        if not self._at_home(url):
            # Only the configured FHIR base gets our bearer token: a paging link or a
            # reference elsewhere is refused before anything is sent.
            raise ForeignUrlError(
                f"{method}: the server sent a link outside {self.base_url}; not followed",
                method=method,
                url=url.split("?", 1)[0],
            )
        send_headers = dict(headers or {})
        if json is not None:
            send_headers["Content-Type"] = FHIR_JSON
        response = self._send(method, url, params, json, send_headers)
        if response.status_code == 401 and self.token_source is not None:
            # An expired or revoked token: the server did nothing with the request, so
            # asking for a new token and sending it once more is safe, writes included.
            self.token_source.invalidate()
            response = self._send(method, url, params, json, send_headers)
        if response.status_code >= 400:
            outcome = _outcome(response)
            raise FhirServerError(
                f"{method} {url} answered {response.status_code}",
                status=response.status_code,
                method=method,
                url=url,
                outcome=outcome,
                retry_after=retry_after(response.headers.get("Retry-After")),
            )
        return response

    def _at_home(self, url: str) -> bool:
        """Whether ``url`` is the FHIR base or below it (same scheme, host, port and path)."""
        return (
            url == self.base_url
            or url.startswith(f"{self.base_url}/")
            or url.startswith(f"{self.base_url}?")
        )

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json: dict[str, Any] | None,
        headers: dict[str, str],
    ) -> requests.Response:
        if self.token_source is not None:
            headers = {**headers, "Authorization": f"Bearer {self.token_source.token()}"}
        try:
            return self.session.request(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout
            )
        except requests.RequestException as exc:
            # Never echo headers: they hold the bearer token.
            raise FhirConnectionError(
                f"{method} {url}: no answer ({type(exc).__name__})", method=method, url=url
            ) from None

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """GET [base]/[type]/[id]."""
        return _json(self._request("GET", f"{resource_type}/{resource_id}"))

    def search(self, resource_type: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every matching resource, following the Bundle's ``next`` links (R4 §3.1.0.3.7)."""
        bundle = _json(self._request("GET", resource_type, params=params))
        while True:
            for entry in bundle.get("entry", []):
                if entry.get("search", {}).get("mode", "match") == "match" and "resource" in entry:
                    yield entry["resource"]
            link = next(
                (x["url"] for x in bundle.get("link", []) if x.get("relation") == "next"), None
            )
            if not link:
                return
            bundle = _json(self._request("GET", link))

    def create(
        self, resource: dict[str, Any], *, if_none_exist: str | None = None
    ) -> dict[str, Any]:
        """POST [base]/[type]; conditional when ``if_none_exist`` is given (R4 §3.1.0.8.1)."""
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else {}
        body = {k: v for k, v in resource.items() if k != "id"}
        response = self._request("POST", str(resource["resourceType"]), json=body, headers=headers)
        return _json(response) if response.content else body

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST [base] a transaction or batch Bundle (R4 §3.1.0.11); returns the response."""
        return _json(self._request("POST", self.base_url, json=bundle))

    def update(self, resource: dict[str, Any], *, version_id: str | None = None) -> dict[str, Any]:
        """PUT [base]/[type]/[id], with If-Match on ``version_id`` (R4 §3.1.0.4.1)."""
        headers = {"If-Match": f'W/"{version_id}"'} if version_id else {}
        response = self._request(
            "PUT", f"{resource['resourceType']}/{resource['id']}", json=resource, headers=headers
        )
        return _json(response) if response.content else resource

    def delete(self, resource_type: str, resource_id: str) -> None:
        """DELETE [base]/[type]/[id] (R4 §3.1.0.7); a resource already gone (404, 410) is
        no error: the outcome wanted is the same."""
        try:
            self._request("DELETE", f"{resource_type}/{resource_id}")
        except FhirServerError as error:
            if error.status not in (404, 410):
                raise


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP-date (RFC 9110
    §10.2.3); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise FhirServerError(
            f"{response.request.method} {response.url}: the answer is not JSON",
            status=response.status_code,
            method=str(response.request.method),
            url=response.url,
        ) from None
    if not isinstance(data, dict):
        raise FhirServerError(f"{response.url}: the answer is not a FHIR resource")
    return data


def _outcome(response: requests.Response) -> dict[str, Any] | None:
    try:
        data = response.json()
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
        return data
    return None
