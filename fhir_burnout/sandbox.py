"""Starting the sandbox EHR (sandbox/, Node) from Python: for the CLI, tests and the demo.

The sandbox is software we did not write (Medplum's FHIR router, oidc-provider) behind thin
glue; this module only runs it as a child process, waits until it says it is ready (it
writes its --info file, then prints its URLs), and stops it with SIGTERM.
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
from typing import Any

import requests

from fhir_burnout.errors import FhirBurnoutError

SANDBOX_DIR = Path(__file__).resolve().parent.parent / "sandbox"
NODE = SANDBOX_DIR / "node_modules" / ".bin" / "node"
MAIN = SANDBOX_DIR / "src" / "main.mjs"

__all__ = ["SandboxError", "SandboxInfo", "sandbox_command", "start_sandbox"]


class SandboxError(FhirBurnoutError):
    """The sandbox could not be started (not installed, or it exited early)."""


@dataclass(frozen=True)
class SandboxInfo:
    """What a running sandbox wrote to its --info file."""

    fhir_base: str
    issuer: str
    launcher: str
    clients: tuple[dict[str, Any], ...]
    seed: dict[str, Any]
    raw: dict[str, Any]

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
) -> list[str]:
    """The command line that runs the sandbox."""
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
    return command


@contextmanager
def start_sandbox(
    *,
    port: int = 0,
    client_config: Path | None = None,
    app_url: str | None = None,
    consent: bool = False,
    extra_env: Sequence[tuple[str, str]] = (),
) -> Iterator[SandboxInfo]:
    """Run a sandbox until the block ends; yields its info once it is ready."""
    with tempfile.TemporaryDirectory(prefix="fhir-burnout-sandbox-") as tmp:
        info_path = Path(tmp) / "info.json"
        command = sandbox_command(
            port=port,
            info=info_path,
            client_config=client_config,
            app_url=app_url,
            consent=consent,
        )
        env = {**os.environ, **dict(extra_env)}
        process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        try:
            info = _wait_until_ready(process, info_path)
            yield info
        finally:
            _stop(process)


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
    for url in (f"{info.fhir_base}/metadata", f"{info.fhir_base}/.well-known/smart-configuration"):
        try:
            response = requests.get(url, timeout=10)
        except requests.RequestException as exc:
            raise SandboxError(f"the sandbox does not answer at {url}: {exc}") from None
        if response.status_code != 200:
            raise SandboxError(f"the sandbox answered {response.status_code} at {url}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
