"""The URLs the app's pages build are kept (web/_urls.py): a kept URL must be the one Flask
would build in the same circumstances: the launch handle, the script root, the values."""

from __future__ import annotations

from flask import g, url_for


def test_a_kept_url_carries_its_own_launch_handle_script_root_and_values(app):
    def built(path="/", root="", ctx=None, endpoint="launch.home", **values):
        with app.test_request_context(path, base_url=f"http://localhost{root}"):
            if ctx is not None:
                g.ctx = ctx
            return url_for(endpoint, **values)

    assert built() == "/" and built() == "/"
    assert built(ctx="one") == "/?ctx=one"
    assert built(ctx="two") == "/?ctx=two"  # another launch in the same browser
    assert built(root="/practice-a") == "/practice-a/"  # behind a proxy's prefix
    assert built(root="/practice-a", ctx="one") == "/practice-a/?ctx=one"
    first = built(endpoint="client.task_page", key="task-1")
    assert first == "/task/task-1" and built(endpoint="client.task_page", key="task-2") == (
        "/task/task-2"
    )
    assert built(endpoint="client.task_page", key="task-1", ctx="one") == "/task/task-1?ctx=one"
    # Files are one URL for every launch (the handle is not added to them).
    assert built(endpoint="static", filename="app.css", ctx="one") == "/static/app.css"
    # Outside the kept ones: external URLs, anchors, lists as values, built each time.
    with app.test_request_context("/", base_url="http://a.example"):
        assert url_for("launch.home", _external=True) == "http://a.example/"
    with app.test_request_context("/", base_url="http://b.example"):
        assert url_for("launch.home", _external=True) == "http://b.example/"
        assert url_for("launch.home", _anchor="main") == "/#main"
        assert url_for("launch.home", tag=["a", "b"]) == "/?tag=a&tag=b"


def test_a_relative_endpoint_is_kept_under_its_own_blueprint(app):
    with app.test_request_context("/task/x"):
        app.preprocess_request()
        assert url_for(".task_page", key="k") == "/task/k"
    # The same relative name from a request outside that blueprint means another endpoint:
    # Flask strips the dot; it must not get the URL kept above.
    with app.test_request_context("/"):
        app.preprocess_request()
        blueprint = app.url_map.bind("localhost").match("/")[0].split(".")[0]
        assert blueprint == "launch"
        assert url_for(".home") == "/"
