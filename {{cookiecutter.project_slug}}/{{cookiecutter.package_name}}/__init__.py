"""A Quart websocket app: ``app`` for servers, ``create_app`` for tests."""

from .app import create_app

app = create_app()

__all__ = ["app", "create_app"]
