"""Render every supported combination and read the result as its user would."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from .helpers import Render, cookiecutter
from .matrix import COMBINATIONS

TEXT_SUFFIXES = {".py", ".toml", ".md", ".html", ".js", ".css", ".txt", ".yml", ".yaml", ".conf"}
TEXT_SUFFIXES.add("")  # Dockerfile, .dockerignore, .gitignore


def text_files(project: Path) -> list[Path]:
    return [p for p in project.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]


@pytest.fixture(params=list(COMBINATIONS), ids=list(COMBINATIONS))
def answers(request: pytest.FixtureRequest) -> dict[str, Any]:
    return COMBINATIONS[request.param]


def test_defaults_render_the_spec_layout(render: Render) -> None:
    project = render()
    assert project.name == "quart-ws-app"
    package = project / "quart_ws_app"
    for relative in (
        "__init__.py",
        "static/js/client.js",
        "static/css/style.css",
        "templates/index.html",
        "broadcast/broker.py",
        "broadcast/broker_memory.py",
    ):
        assert (package / relative).is_file(), relative
    for relative in (
        "pyproject.toml",
        "README.md",
        ".gitignore",
        ".gitattributes",
        "Dockerfile",
        ".dockerignore",
        "compose.yaml",
        ".pre-commit-config.yaml",
        ".github/workflows/ci.yml",
        ".github/dependabot.yml",
    ):
        assert (project / relative).is_file(), relative


def test_no_template_variable_survives(render: Render, answers: dict[str, Any]) -> None:
    project = render(**answers)
    for path in text_files(project):
        assert "cookiecutter" not in path.read_text(encoding="utf-8"), path
    assert not [p for p in project.rglob("*") if "{{" in p.name or "}}" in p.name]


def test_python_and_toml_files_parse(render: Render, answers: dict[str, Any]) -> None:
    project = render(**answers)
    for path in project.rglob("*.py"):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for path in project.rglob("*.toml"):
        tomllib.loads(path.read_text(encoding="utf-8"))


def test_app_templates_keep_their_jinja(render: Render) -> None:
    page = (render() / "quart_ws_app" / "templates" / "index.html").read_text()
    assert "{{ title }}" in page
    assert "{% for name in channels %}" in page


def test_broadcast_off_leaves_no_trace(render: Render) -> None:
    project = render(broadcast=False)
    assert not list(project.rglob("*broadcast*"))
    assert not list(project.rglob("broker*.py"))
    assert not list(project.rglob("hub.py"))
    assert not list(project.rglob("*room*"))
    for path in project.rglob("*.py"):
        assert not re.search("broadcast|broker|redis", path.read_text(), re.I), path
    assert "redis" not in (project / "pyproject.toml").read_text()
    # Nor do the page, its scripts and styles, or the README speak of rooms or users.
    gone = re.compile(r"\broom|inbox|presence|/api/|login|broadcast", re.I)
    for path in page_and_docs(project):
        assert not gone.search(path.read_text()), path


def test_users_off_leaves_no_trace_on_the_page(render: Render) -> None:
    project = render(users=False)
    gone = re.compile(r"inbox|presence|login|\bme\b|users?_", re.I)
    for path in page_and_docs(project) - {project / "README.md"}:
        assert not gone.search(path.read_text()), path


def page_and_docs(project: Path) -> set[Path]:
    """The page's template, scripts and styles, and the README."""
    package = project / "quart_ws_app"
    found = {*package.rglob("*.html"), *package.rglob("*.js"), *package.rglob("*.css")}
    return found | {project / "README.md"}


def test_memory_backend_has_no_redis(render: Render) -> None:
    project = render(broadcast_backend="memory")
    for path in project.rglob("*.py"):
        assert not re.search(r"^\s*(from|import) redis", path.read_text(), re.M), path
    assert not list(project.rglob("*redis*"))
    assert "redis" not in (project / "pyproject.toml").read_text()


def test_uvicorn_server_adds_its_entry_point_and_dependency(render: Render) -> None:
    project = render(server="uvicorn")
    assert (project / "quart_ws_app" / "__main__.py").is_file()
    assert (project / "quart_ws_app" / "hypercorn_config.py").is_file()  # Hypercorn keeps working
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert any(dep.startswith("uvicorn") for dep in pyproject["project"]["dependencies"])
    assert "python -m quart_ws_app" in (project / "README.md").read_text()


def test_hypercorn_server_has_no_uvicorn(render: Render) -> None:
    project = render(server="hypercorn")
    assert not (project / "quart_ws_app" / "__main__.py").exists()
    for path in project.rglob("*.py"):
        assert not re.search(r"^\s*(from|import) uvicorn", path.read_text(), re.M), path
    assert "uvicorn" not in (project / "pyproject.toml").read_text()


@pytest.mark.parametrize(
    "name",
    ['Léa\'s "Chat"', "O'Brien \\ Sons", "Ünïcode Ørsted", "Tabs\tand  spaces"],
)
def test_awkward_project_names_give_valid_code(render: Render, name: str) -> None:
    project = render(project_name=name)
    assert re.fullmatch(r"[a-z][a-z0-9-]*", project.name)
    for path in project.rglob("*.py"):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert name in pyproject["project"]["description"]
    config = (project / project.name.replace("-", "_") / "config.py").read_text("utf-8")
    assert title_default(config) == name


def title_default(config_source: str) -> object:
    """The value of ``DEFAULTS["TITLE"]`` in config.py, read without importing it."""
    for node in ast.walk(ast.parse(config_source)):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "TITLE":
                    return ast.literal_eval(value)
    raise AssertionError("no TITLE in DEFAULTS")


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"package_name": "not-valid"}, "package_name"),
        ({"package_name": "import"}, "package_name"),
        ({"package_name": "json"}, "package_name"),
        ({"project_slug": "Has Spaces"}, "project_slug"),
        ({"project_slug": "Capitals"}, "project_slug"),
        ({"broadcast": "false", "broadcast_backend": "redis"}, "broadcast_backend"),
    ],
)
def test_bad_answers_stop_generation(tmp_path: Path, answers: dict[str, Any], field: str) -> None:
    result = cookiecutter(tmp_path, answers)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1
    assert errors[0].startswith(f"ERROR: {field}:")
    assert not list(tmp_path.iterdir()), "a half-made project was left behind"


@pytest.mark.parametrize(
    ("field", "value"), [("broadcast_backend", "kafka"), ("server", "gunicorn"), ("ci", "gitlab")]
)
def test_unknown_choice_is_refused_by_cookiecutter(tmp_path: Path, field: str, value: str) -> None:
    result = cookiecutter(tmp_path, {field: value})
    assert result.returncode == 1
    assert field in result.stderr.splitlines()[-1]
    assert not list(tmp_path.iterdir())


def test_the_wheel_holds_every_module_and_static_file(render: Render, tmp_path: Path) -> None:
    """What ``pip install .`` (and the Dockerfile) installs: all of it, not only the source tree."""
    project = render(broadcast_backend="redis")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=project, check=True, timeout=300, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = project / "quart_ws_app"
    expected = {
        path.relative_to(project).as_posix()
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert expected <= names, sorted(expected - names)
