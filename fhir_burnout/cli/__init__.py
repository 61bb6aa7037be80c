"""The ``fhir-burnout`` command: one module per command group.

``_content`` (build, validate, publish, summary), ``_safety_doc`` (safety-doc),
``_questionnaire`` (questionnaire check | validate | score), ``_sandbox`` (sandbox),
``_serve`` (serve, keys), ``_doctor`` (doctor), ``_demo`` (demo), ``_referrals``
(referrals subscribe), ``_sync`` (db upgrade, enrol, sync status | retry) and ``_worker``
(worker); ``_options`` holds what they share (the content root, the config file).
"""

from __future__ import annotations

import click

from fhir_burnout import __version__
from fhir_burnout._logging import LEVELS, configure_logging
from fhir_burnout.cli import (
    _content,
    _demo,
    _doctor,
    _questionnaire,
    _referrals,
    _safety_doc,
    _sandbox,
    _serve,
    _sync,
    _worker,
)

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="fhir-burnout")
@click.option(
    "--log-level", type=click.Choice(LEVELS, case_sensitive=False), default="info",
    show_default=True, help="What the app logs (other libraries: warnings only).",
)  # fmt: skip
@click.option("--log-json", is_flag=True, help="Log JSON lines (time, level, logger, message).")
def main(log_level: str, log_json: bool) -> None:
    """fhir_burnout: the burn-out programme as FHIR resources."""
    # One place for every command (fhir_burnout/_logging.py); serve hands it to gunicorn.
    configure_logging(log_level.lower(), json_lines=log_json)


for _command in (
    _content.build,
    _content.validate,
    _content.publish_command,
    _content.summary,
    _safety_doc.safety_doc,
    _questionnaire.questionnaire,
    _sandbox.sandbox,
    _serve.serve,
    _serve.keys,
    _doctor.doctor,
    _demo.demo,
    _referrals.referrals,
    _sync.db_group,
    _sync.enrol_command,
    _sync.sync_group,
    _worker.worker_command,
):
    main.add_command(_command)
