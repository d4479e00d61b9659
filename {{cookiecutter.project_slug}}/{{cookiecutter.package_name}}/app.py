"""Assemble the Quart application: configuration, routes, hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Quart

{% if cookiecutter.broadcast -%}
from .broadcast import blueprint as broadcast_blueprint
from .broadcast import init_broadcast
{% endif -%}
from .config import load_config
from .gc_tuning import tune_gc
from .origin import check_origin
from .quart_internals import use_quart_internals
from .routes import blueprint
from .shutdown import CloseOnShutdown


def create_app(overrides: Mapping[str, Any] | None = None) -> Quart:
    """Build the app from defaults, ``QUART_*`` variables, then ``overrides``."""
    app = Quart(__name__)
    use_quart_internals(app)
    load_config(app, overrides)
    app.extensions["channels"] = {"echo": "/ws"}
    app.extensions["health_checks"] = {}
    app.before_serving(tune_gc)
    app.before_websocket(check_origin)
    app.register_blueprint(blueprint)
{%- if cookiecutter.broadcast %}
    init_broadcast(app)
    app.register_blueprint(broadcast_blueprint)
{%- endif %}
    app.asgi_app = CloseOnShutdown(app.asgi_app)  # type: ignore[method-assign]
    return app
