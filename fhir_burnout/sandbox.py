"""Starting the sandbox EHR (sandbox/, Node) from Python: for the CLI, tests and the demo.

The sandbox is software we did not write (Medplum's FHIR router, oidc-provider) behind thin
glue; this module only runs it as a child process, waits until it says it is ready (it
writes its --info file, then prints its URLs), and stops it with SIGTERM (or SIGKILL).

``start_sandbox`` runs one for the length of a ``with`` block. Fault tests use
``SandboxProcess``: stop or kill the sandbox and start it again on the same port; with a
``data_dir`` its FHIR store and client credentials survive that, as a real EHR's would.
With ``koppeltaal=True`` it is a Koppeltaal 2.0 domain instead of a SMART EHR (KT2 seed, the
module and portal as clients, the Koppeltaal FHIR rules, a portal page): see the sandbox's
README, "Koppeltaal profile". ``discovery``, ``profile_claim`` and ``strict_scopes`` make it
play EHRs that publish their endpoints only in /metadata or without ``issuer``, name the
user in a v1 ``profile`` claim, or refuse scopes the app was not registered for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

from fhir_burnout.errors import FhirBurnoutError

SANDBOX_DIR = Path(__file__).resolve().parent.parent / "sandbox"
NODE = SANDBOX_DIR / "node_modules" / ".bin" / "node"
MAIN = SANDBOX_DIR / "src" / "main.mjs"

__all__ = ["SandboxError", "SandboxInfo", "SandboxProcess", "sandbox_command", "start_sandbox"]


class SandboxError(FhirBurnoutError):
    """The sandbox could not be started (not installed, or it exited early)."""


@dataclass(frozen=True)
class SandboxInfo:
    """What a running sandbox wrote to its --info file.

    ``koppeltaal`` says whether it runs the Koppeltaal profile; ``portal`` is then the URL of
    its portal page (else None).
    """

    fhir_base: str
    issuer: str
    launcher: str
    clients: tuple[dict[str, Any], ...]
    seed: dict[str, Any]
    raw: dict[str, Any]
    koppeltaal: bool = False
    portal: str | None = None
    discovery: str = "full"

    @classmethod
    def from_file(cls, path: Path) -> SandboxInfo:
        """Read an --info file."""
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            fhir_base=data["fhir_base"],
            issuer=data["issuer"],
            launcher=data["launcher"],
            clients=tuple(data.get("clients", [])),
            seed=data.get("seed", {}),
            raw=data,
            koppeltaal=bool(data.get("koppeltaal", False)),
            portal=data.get("portal"),
            discovery=str(data.get("discovery", "full")),
        )

    def client(self, client_id: str) -> dict[str, Any]:
        """A registered client by id."""
        return next(c for c in self.clients if c["client_id"] == client_id)


def sandbox_command(
    *,
    port: int = 0,
    info: Path | None = None,
    client_config: Path | None = None,
    app_url: str | None = None,
    consent: bool = False,
    data_dir: Path | None = None,
    token_ttl: int | None = None,
    rate_limit: int | None = None,
    koppeltaal: bool = False,
    resources: Sequence[str] = (),
    discovery: str = "full",
    profile_claim: bool = False,
    strict_scopes: bool = False,
) -> list[str]:
    """The command line that runs the sandbox.

    ``data_dir`` keeps the FHIR store and the generated credentials there (--data);
    ``token_ttl`` is the access tokens' lifetime in seconds (--token-ttl); ``rate_limit``
    allows that many FHIR requests per second per client, then 429 (--rate-limit);
    ``koppeltaal`` runs the Koppeltaal 2.0 profile (--koppeltaal); ``resources`` are further
    resource servers a client may ask a token for (--resource; ``app_url`` always is one).
    ``koppeltaal`` runs the Koppeltaal 2.0 profile (--koppeltaal); ``discovery`` is
    full, metadata-only or no-issuer (--discovery); ``profile_claim`` names the user in a v1
    ``profile`` claim (--profile-claim); ``strict_scopes`` refuses unregistered scopes
    (--strict-scopes).
    """
    if not NODE.exists():
        raise SandboxError(
            f"the sandbox is not installed: {NODE} is missing; run `make test` or "
            "`cd sandbox && npm ci` (it brings Node 22 from the npm registry)"
        )
    command = [str(NODE), str(MAIN), "--port", str(port)]
    if info is not None:
        command += ["--info", str(info)]
    if client_config is not None:
        command += ["--client-config", str(client_config)]
    if app_url:
        command += ["--app-url", app_url]
    if consent:
        command.append("--consent")
    if data_dir is not None:
        command += ["--data", str(data_dir)]
    if token_ttl is not None:
        command += ["--token-ttl", str(token_ttl)]
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    if koppeltaal:
        command.append("--koppeltaal")
    for resource in resources:
        command += ["--resource", resource]
    if discovery != "full":
        command += ["--discovery", discovery]
    if profile_claim:
        command.append("--profile-claim")
    if strict_scopes:
        command.append("--strict-scopes")
    return command


class SandboxProcess:
    """A sandbox EHR child process to start, stop, kill and start again: for fault tests.

    The first :meth:`start` takes ``port`` (0: a free one) and sets :attr:`port` to the one
    it got; later starts reuse it, so the URLs in :attr:`info` stay the same. With
    ``data_dir`` the store, the client credentials and the token signing key survive a
    restart (tokens issued before it stay valid); without it every start is a fresh sandbox.
    Use it as a context manager, or call :meth:`close` at the end.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        client_config: Path | None = None,
        app_url: str | None = None,
        consent: bool = False,
        data_dir: Path | None = None,
        token_ttl: int | None = None,
        rate_limit: int | None = None,
        koppeltaal: bool = False,
        extra_env: Sequence[tuple[str, str]] = (),
        resources: Sequence[str] = (),
        discovery: str = "full",
        profile_claim: bool = False,
        strict_scopes: bool = False,
    ) -> None:
        self.port = port
        self._options: dict[str, Any] = {
            "client_config": client_config,
            "app_url": app_url,
            "consent": consent,
            "data_dir": data_dir,
            "token_ttl": token_ttl,
            "rate_limit": rate_limit,
            "koppeltaal": koppeltaal,
            "resources": tuple(resources),
            "discovery": discovery,
            "profile_claim": profile_claim,
            "strict_scopes": strict_scopes,
        }
        self._env = {**os.environ, **dict(extra_env)}
        self._tmp = tempfile.TemporaryDirectory(prefix="fhir-burnout-sandbox-")
        self._info_path = Path(self._tmp.name) / "info.json"
        self._process: subprocess.Popen[str] | None = None
        self._info: SandboxInfo | None = None

    @property
    def info(self) -> SandboxInfo:
        """What the last start wrote to its --info file (kept after a stop, for comparison)."""
        if self._info is None:
            raise SandboxError("the sandbox has not been started")
        return self._info

    @property
    def running(self) -> bool:
        """Whether the sandbox process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> SandboxInfo:
        """Start the sandbox and wait until it answers; returns its info."""
        if self.running:
            raise SandboxError("the sandbox is already running")
        self._info_path.unlink(missing_ok=True)  # a killed sandbox leaves its info behind
        command = sandbox_command(port=self.port, info=self._info_path, **self._options)
        process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._env,
        )
        self._process = process
        try:
            self._info = _wait_until_ready(process, self._info_path)
        except BaseException:
            _stop(process)
            raise
        self.port = urlsplit(self._info.fhir_base).port or self.port
        return self._info

    def stop(self) -> None:
        """Stop the sandbox with SIGTERM, as an operator would (SIGKILL after 10 s)."""
        if self._process is not None:
            _stop(self._process)

    def kill(self) -> None:
        """Kill the sandbox with SIGKILL: a crash. Only what it had answered for survives."""
        if self._process is not None:
            _stop(self._process, signal.SIGKILL)

    def close(self) -> None:
        """Stop the sandbox and remove its temporary files (not the data directory)."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> SandboxProcess:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def start_sandbox(
    *,
    port: int = 0,
    client_config: Path | None = None,
    app_url: str | None = None,
    consent: bool = False,
    data_dir: Path | None = None,
    token_ttl: int | None = None,
    rate_limit: int | None = None,
    koppeltaal: bool = False,
    extra_env: Sequence[tuple[str, str]] = (),
    resources: Sequence[str] = (),
    discovery: str = "full",
    profile_claim: bool = False,
    strict_scopes: bool = False,
) -> Iterator[SandboxInfo]:
    """Run a sandbox until the block ends; yields its info once it is ready.

    The options are :func:`sandbox_command`'s; :class:`SandboxProcess` can also restart it.
    """
    sandbox = SandboxProcess(
        port=port,
        client_config=client_config,
        app_url=app_url,
        consent=consent,
        data_dir=data_dir,
        token_ttl=token_ttl,
        rate_limit=rate_limit,
        koppeltaal=koppeltaal,
        extra_env=extra_env,
        resources=resources,
        discovery=discovery,
        profile_claim=profile_claim,
        strict_scopes=strict_scopes,
    )
    with sandbox:
        yield sandbox.info


def _wait_until_ready(process: subprocess.Popen[str], info_path: Path) -> SandboxInfo:
    # The sandbox writes the info file, then prints its URLs; reading its output blocks
    # until then, so no polling and no sleeping.
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line.rstrip())
        if line.startswith("Info file:"):
            # Keep draining its output, or a chatty sandbox blocks on a full pipe.
            tail: deque[str] = deque(seen, maxlen=200)
            threading.Thread(target=tail.extend, args=(process.stdout,), daemon=True).start()
            info = SandboxInfo.from_file(info_path)
            _check_answers(info)
            return info
    process.wait()
    output = "\n".join(seen[-20:])
    raise SandboxError(
        f"the sandbox exited with {process.returncode} before it was ready:\n{output}"
    )


def _check_answers(info: SandboxInfo) -> None:
    """The FHIR server and SMART discovery answer (the sandbox said it is ready: one try)."""
    urls = [f"{info.fhir_base}/metadata"]
    if info.discovery != "metadata-only":
        urls.append(f"{info.fhir_base}/.well-known/smart-configuration")
    for url in urls:
        try:
            response = requests.get(url, timeout=10)
        except requests.RequestException as exc:
            raise SandboxError(f"the sandbox does not answer at {url}: {exc}") from None
        if response.status_code != 200:
            raise SandboxError(f"the sandbox answered {response.status_code} at {url}")


def _stop(process: subprocess.Popen[str], how: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
