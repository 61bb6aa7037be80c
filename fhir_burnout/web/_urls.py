"""The app's Flask, keeping the URLs its pages build.

A page builds about ten URLs (the client's navigation, the forms' actions, the files), and
werkzeug builds each by walking its rules: on a module screen that was a tenth of the page.
Within a request a URL depends only on the endpoint, its values, the script root and the
launch handle the app adds to every URL (``_launch._keep_handle``): those are the key.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask.globals import _cv_request

#: The most URLs one app keeps; then it starts again (the keys hold clients' Task keys).
MAX_URLS = 10_000


class App(Flask):
    """Flask with :meth:`url_for` answering a URL it built before from memory."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._urls: dict[tuple[Any, ...], str] = {}

    def url_for(
        self,
        /,
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: Any,
    ) -> str:
        """As Flask's, from memory for a URL within the site built in this request's
        circumstances before; anything else (external, an anchor, outside a request) as
        Flask builds it."""
        context = _cv_request.get(None)
        if context is None or _anchor or _method or _scheme or _external:
            return super().url_for(
                endpoint,
                _anchor=_anchor,
                _method=_method,
                _scheme=_scheme,
                _external=_external,
                **values,
            )
        request = context.request
        if endpoint[:1] == ".":  # relative to the request's blueprint: named in the key
            endpoint = f"{request.blueprint}{endpoint}" if request.blueprint else endpoint[1:]
        try:
            key = (endpoint, request.script_root, g.get("ctx"), *sorted(values.items()))
            known = self._urls.get(key)
        except TypeError:  # a value that cannot be a key (a list): built each time
            return super().url_for(endpoint, **values)
        if known is None:
            known = super().url_for(endpoint, **values)
            if len(self._urls) >= MAX_URLS:
                self._urls.clear()
            self._urls[key] = known
        return known
