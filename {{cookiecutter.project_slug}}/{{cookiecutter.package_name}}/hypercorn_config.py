r"""Hypercorn's production settings, derived from the app's own configuration.

    hypercorn --config python:{{ cookiecutter.package_name }}.hypercorn_config \
        --worker-class uvloop {{ cookiecutter.package_name }}:app

Hypercorn takes every module-level name here as a setting (all of them:
https://hypercorn.readthedocs.io/en/latest/how_to_guides/configuring.html);
command-line options such as ``--bind`` and ``--workers`` override them. The
message size limit and the keepalive come from ``app.config``, so that
``QUART_MAX_MESSAGE_SIZE``, ``QUART_PING_INTERVAL`` and ``QUART_PING_TIMEOUT``
mean the same under Hypercorn as under uvicorn, and a bad value stops the
server at start-up with the variable's name.

The event loop is chosen on the command line, not here: uvloop (the cheapest
Hypercorn setup measured) is not installed on Windows, and a ``worker_class``
of "uvloop" here would stop Hypercorn from starting there.
"""

from . import app as _app

_config = _app.config

# Behind a reverse proxy on the same host; --bind 0.0.0.0:8000 in a container.
bind = ["127.0.0.1:8000"]
{%- if cookiecutter.broadcast and cookiecutter.broadcast_backend == "memory" %}
# One process: the memory broadcast backend reaches the clients of its own
# process only. Regenerate with broadcast_backend=redis to run more.
{%- elif cookiecutter.broadcast %}
# The redis broadcast backend reaches every worker: raise this to use more cores.
{%- endif %}
workers = 1
# Seconds open connections get to finish on SIGTERM before they are closed
# with 1001 (going away).
graceful_timeout = 5
# Larger messages close the connection with 1009, as the app's own check does.
websocket_max_message_size = _config["MAX_MESSAGE_SIZE"]
# Keepalive: ping every QUART_PING_INTERVAL, and drop a connection that sends
# nothing, not even the pong, for QUART_PING_INTERVAL + QUART_PING_TIMEOUT: a
# dead peer then frees its socket and queue. Hypercorn does not wait for
# pongs: read_timeout is what drops a dead peer, at the cost of a timer per
# read (measured by the template's benchmark).
websocket_ping_interval = _config["PING_INTERVAL"]
read_timeout = _config["PING_INTERVAL"] + _config["PING_TIMEOUT"]
accesslog = "-"
errorlog = "-"

del _app, _config  # not settings
