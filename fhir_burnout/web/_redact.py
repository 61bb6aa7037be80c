"""Access logs without secrets: the one-time codes in a launch's callback, and invitation
codes, are replaced before a log line is written.

A web server logs every request line. ``/callback?code=…&state=…`` carries an authorization
code (worth a token until it is used) and ``/invite/<code>`` an invitation that enrols
whoever holds it; neither belongs in a log file that operators, backups and log services
read. The filter sits on the loggers of the servers we run (Werkzeug's development server
and gunicorn's access log) and changes only what it recognises.
"""

from __future__ import annotations

import logging
import re

#: Query parameters whose value is a secret or links a browser to one.
_SECRET_PARAMS = re.compile(r"([?&](?:code|state|session_state|launch)=)[^&\s\"']+")
_INVITE = re.compile(r"(/invite/)[^/?\s\"']+")
REDACTED = "[redacted]"
#: The loggers that write request lines.
ACCESS_LOGGERS = ("werkzeug", "gunicorn.access")


def redact(line: str) -> str:
    """``line`` with callback codes, states and invitation codes replaced."""
    return _INVITE.sub(rf"\1{REDACTED}", _SECRET_PARAMS.sub(rf"\1{REDACTED}", line))


class RedactSecrets(logging.Filter):
    """A logging filter that writes the record's message with its secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def install() -> None:
    """Put the filter on the access loggers (once, however many apps are created)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
