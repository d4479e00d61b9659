"""Every render's docs are true: the files, modules and settings they name exist in it.

A README line, a docstring, a comment or a usage string that names a file, a
``python -m`` module or a ``QUART_*`` variable is a claim about the project it
sits in. A claim that holds in one combination and not in another is the kind
of mistake a reader trips over, so each combination is read on its own.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

import pytest

from .helpers import Render
from .matrix import COMBINATIONS

FILE = re.compile(
    r"(?<![\w/.:-])((?:\.{0,2}/|/)?(?:[\w.-]+/)*[\w-]+\."
    r"(?:py|md|toml|ya?ml|js|css|html|conf|txt|json))(?![\w/])"
)
MODULE = re.compile(r"python3? -m ([\w.]+)")
VARIABLE = re.compile(r"\bQUART_([A-Z][A-Z0-9_]*)(?![\w*])")
READ = {".py", ".md", ".toml", ".yml", ".yaml", ".js", ".html", ".css", ".conf", ""}
# Modules of the tools a reader runs, not of the project.
TOOLS = {"pip", "venv", "pytest", "hypercorn", "uvicorn", "playwright", "http.server"}
# Quart's own variables for `quart run`, and quart-auth's session lifetime:
# not settings of the app.
QUARTS_OWN = {"APP", "RUN_PORT", "AUTH_DURATION"}


def read_files(project: Path) -> dict[str, str]:
    return {
        path.relative_to(project).as_posix(): path.read_text(encoding="utf-8", errors="replace")
        for path in sorted(project.rglob("*"))
        if path.is_file() and path.suffix in READ
    }


def file_exists(files: set[str], where: str, reference: str) -> bool:
    """``reference`` names a file of the render: a path, or a name, found anywhere."""
    if reference.startswith("."):  # relative to the file that names it (a JS import)
        return posixpath.normpath(posixpath.join(posixpath.dirname(where), reference)) in files
    if "/" in reference:  # a path, or a URL path such as /static/js/page.js
        reference = reference.removeprefix("/")
        return any(name == reference or name.endswith("/" + reference) for name in files)
    return any(name.rsplit("/", 1)[-1] == reference for name in files)


def false_claims(project: Path) -> list[str]:
    """What the render's texts name that the render does not have."""
    texts = read_files(project)
    files = {path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file()}
    # The settings the app has: the keys of config.py's DEFAULTS (the render's
    # own tests/test_settings.py checks the README's table against them).
    config = next(text for name, text in texts.items() if name.endswith("/config.py"))
    settings = set(re.findall(r'^    "([A-Z][A-Z0-9_]+)":', config, re.M)) | QUARTS_OWN
    claims = []
    for where, text in texts.items():
        for reference in FILE.findall(text):
            if not file_exists(files, where, reference):
                claims.append(f"{where} names {reference}")
        for module in MODULE.findall(text):
            path = module.replace(".", "/")
            if module not in TOOLS and not {f"{path}.py", f"{path}/__main__.py"} & files:
                claims.append(f"{where} names python -m {module}")
        for variable in VARIABLE.findall(text):
            if variable not in settings:
                claims.append(f"{where} names QUART_{variable}")
    return sorted(set(claims))


@pytest.mark.parametrize("answers", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_every_file_module_and_setting_named_exists(
    render: Render, answers: dict[str, Any]
) -> None:
    assert false_claims(render(**answers)) == []


def test_a_named_file_that_is_removed_is_found(render: Render) -> None:
    project = render()
    (project / "quart_ws_app" / "origin.py").unlink()
    assert "README.md names origin.py" in false_claims(project)
