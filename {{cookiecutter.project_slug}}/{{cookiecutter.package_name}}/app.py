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
from .limits import ConnectionCap
from .logs import quiet_repeated_lines
from .metrics import Metrics, count_closed, count_open
from .metrics import blueprint as metrics_blueprint
from .origin import check_origin, check_request_origin
from .quart_internals import use_quart_internals
from .routes import blueprint
from .shutdown import CloseOnShutdown
from .sockets import SocketClosed, end_quietly
{%- if cookiecutter.users %}
from .users import blueprint as users_blueprint
from .users import init_users, require_secret_key
{%- endif %}


def create_app(overrides: Mapping[str, Any] | None = None) -> Quart:
    """Build the app from defaults, ``QUART_*`` variables, then ``overrides``."""
    app = Quart(__name__)
    quiet_repeated_lines()
    use_quart_internals(app)
    load_config(app, overrides)
{%- if cookiecutter.users %}
    app.before_serving(require_secret_key)  # first: without the key nothing starts
{%- endif %}
    metrics = app.extensions["metrics"] = Metrics()
    app.extensions["channels"] = {"echo": "/ws"}  # name -> socket path, None: a page part opens it
    # Templates that features add to the page, at three places (templates/index.html).
    app.extensions["page_parts"] = {"after_header": [], "before_log": [], "after_send": []}
    app.extensions["health_checks"] = {}
    app.before_serving(tune_gc)
    app.before_websocket(check_origin)
    app.before_request(check_request_origin)
    app.before_websocket(count_open)
    app.teardown_websocket(count_closed)
    app.register_error_handler(SocketClosed, end_quietly)
    app.register_blueprint(blueprint)
    app.register_blueprint(metrics_blueprint)
{%- if cookiecutter.broadcast %}
    init_broadcast(app)
    app.register_blueprint(broadcast_blueprint)
{%- endif %}
{%- if cookiecutter.users %}
    init_users(app)
    app.register_blueprint(users_blueprint)
{%- endif %}
    app.asgi_app = CloseOnShutdown(app.asgi_app)  # type: ignore[method-assign]
    # Outermost: a refused handshake costs no state at all.
    app.asgi_app = ConnectionCap(app.asgi_app, app.config["MAX_CONNECTIONS"], metrics)  # type: ignore[method-assign]
    return app
