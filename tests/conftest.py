"""Render the template with chosen answers, through cookiecutter's own CLI."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .matrix import ROOT, cli_pairs


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


Render = Callable[..., Path]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "container: builds and runs images (nox -s container)")


@pytest.fixture
def render(tmp_path: Path) -> Render:
    """Render with ``answers``; return the project folder."""

    def run(**answers: Any) -> Path:
        result = cookiecutter(tmp_path, answers)
        assert result.returncode == 0, result.stderr
        (project,) = [path for path in tmp_path.iterdir() if path.is_dir()]
        return project

    return run


def load_hook(name: str) -> ModuleType:
    """Import ``hooks/<name>.py`` unrendered: its Jinja sits inside a string."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
