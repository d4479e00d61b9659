"""Fixtures of the template's tests: render the template with chosen answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import Render, cookiecutter


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
