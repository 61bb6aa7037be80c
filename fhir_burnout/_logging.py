"""Logging, configured in one place: every command of the CLI and the gunicorn workers of
``serve`` write the same lines, as text or as JSON lines.

Only the app's own loggers (``fhir_burnout.*``) and the servers' (``gunicorn.*``,
``werkzeug``) follow ``--log-level``; every other library stays at WARNING, even at
``debug``: urllib3 writes each request's URL (a FHIR search names a client's BSN) and
SQLAlchemy each statement's parameters, and neither belongs in a log (docs/security.md).
The access lines are redacted by ``web._redact`` (codes and invitation codes); the log
redaction test (tests/test_logging.py) drives launches, answers and referrals at DEBUG
and finds no token, code, secret or answer in any line.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["LEVELS", "JsonLines", "configure_logging", "logging_config", "request_id"]

#: The levels ``--log-level`` takes.
LEVELS = ("debug", "info", "warning", "error")

#: The id of the request being handled, when there is one (JSON lines carry it).
request_id: ContextVar[str | None] = ContextVar("fhir_burnout_request_id", default=None)

#: The loggers that follow ``--log-level``; the rest stay at WARNING (see above).
_OWN_LOGGERS = ("fhir_burnout", "gunicorn.error", "werkzeug")


class JsonLines(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the
    request id and exception when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        found = getattr(record, "request_id", None) or request_id.get()
        if found:
            line["request_id"] = str(found)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class _Stderr(logging.StreamHandler[TextIO]):
    """A handler on whatever ``sys.stderr`` is when a line is written (a test runner or a
    daemon may swap it after logging was configured)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the handler always writes to the current standard error."""


def logging_config(level: str = "info", json_lines: bool = False) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary for ``level`` (one of :data:`LEVELS`),
    as text lines or JSON lines; gunicorn takes the same one (``logconfig_dict``)."""
    if level.lower() not in LEVELS:
        raise ValueError(f"log level {level!r}: use one of {', '.join(LEVELS)}")
    text = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,  # loggers made at import time keep working
        "formatters": {"line": {"()": JsonLines} if json_lines else {"format": text}},
        "handlers": {"stderr": {"()": _Stderr, "formatter": "line"}},
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            **{name: {"level": level.upper(), "propagate": True} for name in _OWN_LOGGERS},
            # Request lines are INFO: written from info on, as gunicorn's access log does.
            "gunicorn.access": {"level": "INFO", "propagate": True},
        },
    }


def configure_logging(level: str = "info", json_lines: bool = False) -> None:
    """Configure the process's logging: ``level`` for the app's and servers' loggers,
    WARNING for every library; lines to standard error, as text or JSON lines."""
    logging.config.dictConfig(logging_config(level, json_lines))
