"""gunicorn's configuration for ``fhir-burnout serve`` (``-c python:fhir_burnout._gunicorn``).

gunicorn reads this module's names as its settings; ``serve`` passes its ``--log-level``
and ``--log-json`` in the environment, so gunicorn's own lines, its access log and the
app's loggers in every worker are written as ``_logging`` configures them, through one
handler (issue 18, point 5). Reading the environment at import is this module's purpose:
nothing else imports it.
"""

from __future__ import annotations

import os

from fhir_burnout._logging import logging_config

logconfig_dict = logging_config(
    os.environ.get("FHIR_BURNOUT_LOG_LEVEL", "info"),
    json_lines=os.environ.get("FHIR_BURNOUT_LOG_JSON") == "1",
)
