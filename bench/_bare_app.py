"""The baseline of bench/web.py: a bare Flask app with one route, run under the same gunicorn
command line as the real app (``gunicorn --workers 2 --bind ... bench._bare_app:app``)."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def bare() -> str:
    """A short HTML page: what any Flask route costs under gunicorn, with nothing of ours."""
    return '<!doctype html><html lang="nl"><title>Kaal</title><p>Hallo.</p></html>'
