"""The FHIR client's reading of server answers, and where it sends its token."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fhir_burnout.errors import ForeignUrlError
from fhir_burnout.fhir import FhirClient
from fhir_burnout.fhir._client import retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("Thu, 26 Nov 2026 10:00:30 GMT", 30.0),
        ("Thu, 26 Nov 2026 09:59:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_as_a_date(header, seconds):
    now = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after(header, now=now) == seconds


class _Recorder(BaseHTTPRequestHandler):
    """A loopback server that answers one searchset page whose ``next`` link the test
    chooses, and records every request that reaches it (with its Authorization header)."""

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        body = json.dumps(self.server.page).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def recording(page=None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen, server.page = [], page or {"resourceType": "Bundle", "type": "searchset"}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize("elsewhere", ["other host", "same host, outside the base"])
def test_a_next_link_outside_the_fhir_base_is_refused_and_gets_no_token(elsewhere):
    """A stand-in EHR (the sandbox never sends a foreign link, so this fault cannot be made
    with it): its Bundle's ``next`` points elsewhere. The client yields the page it got,
    then refuses the link; the other address never sees a request, let alone our token."""
    with recording() as (other, other_url):
        page = {
            "resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}],
        }  # fmt: skip
        with recording(page) as (ehr, ehr_url):
            target = other_url if elsewhere == "other host" else ehr_url
            page["link"] = [{"relation": "next", "url": f"{target}/steal?page=2"}]
            with FhirClient(f"{ehr_url}/fhir", token="secret-token") as client:
                found = client.search("Patient", {"name": "x"})
                assert next(found)["id"] == "p1"
                with pytest.raises(ForeignUrlError) as refused:
                    next(found)
    assert other.seen == []
    assert [path for path, _ in ehr.seen] == ["/fhir/Patient?name=x"]
    assert ehr.seen[0][1] == "Bearer secret-token"  # at home, the token goes
    assert "secret-token" not in str(refused.value) and refused.value.code == "security"


def test_a_next_link_inside_the_fhir_base_is_followed():
    page = {"resourceType": "Bundle", "type": "searchset"}
    with recording(page) as (ehr, ehr_url):
        page["entry"] = [{"resource": {"resourceType": "Patient", "id": "p1"}}]
        page["link"] = [{"relation": "next", "url": f"{ehr_url}/fhir/Patient?page=2"}]
        with FhirClient(f"{ehr_url}/fhir", token="secret-token") as client:
            found = client.search("Patient", {})
            assert [next(found)["id"], next(found)["id"]] == ["p1", "p1"]
    assert [p for p, _ in ehr.seen] == ["/fhir/Patient", "/fhir/Patient?page=2"]
