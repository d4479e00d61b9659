"""Helpers that the template's tests import (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from .matrix import ROOT, cli_pairs

Render = Callable[..., Path]  # the type of the render fixture


def cookiecutter(output: Path, answers: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Run ``cookiecutter --no-input`` as a user would; never raises."""
    pairs = cli_pairs(answers)
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(ROOT), *pairs],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_hook(name: str) -> ModuleType:
    """Import ``hooks/<name>.py`` unrendered: its Jinja sits inside a string."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
