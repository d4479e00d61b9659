"""The supported option combinations, read once from ``cookiecutter.json``.

The noxfile and the template's tests both take the matrix from here, so a new
backend or server choice adds its sessions and its render tests at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPTIONS: dict[str, Any] = json.loads((ROOT / "cookiecutter.json").read_text())


def combinations() -> dict[str, dict[str, Any]]:
    """Every supported combination of answers, by a readable id."""
    features: list[tuple[str, dict[str, Any]]] = [("no-broadcast", {"broadcast": False})]
    features += [
        (f"broadcast-{backend}", {"broadcast": True, "broadcast_backend": backend})
        for backend in OPTIONS["broadcast_backend"]
    ]
    combinations = {
        f"{name}-{server}": {**answers, "server": server}
        for server in OPTIONS["server"]
        for name, answers in features
    }
    # Users on each backend, each under one server: what users change does not
    # depend on the server, and the two pairs cover both servers.
    servers = reversed(OPTIONS["server"])
    for backend, server in zip(OPTIONS["broadcast_backend"], servers, strict=True):
        answers = {"broadcast": True, "broadcast_backend": backend, "users": True}
        combinations[f"users-{backend}-{server}"] = {**answers, "server": server}
    return combinations


def cli_pairs(answers: dict[str, Any]) -> list[str]:
    """``key=value`` arguments for ``cookiecutter --no-input``."""
    return [
        f"{key}={str(value).lower() if isinstance(value, bool) else value}"
        for key, value in answers.items()
    ]


COMBINATIONS = combinations()
