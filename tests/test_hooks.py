"""Unit tests of the hooks' functions, without rendering."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .helpers import load_hook
from .matrix import ROOT

pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")

GOOD = {
    "project_name": "Quart WS App",
    "project_slug": "quart-ws-app",
    "package_name": "quart_ws_app",
    "broadcast": True,
    "broadcast_backend": "memory",
    "users": False,
    "server": "hypercorn",
    "ci": "github",
}


def test_good_answers_pass() -> None:
    assert pre_gen.first_error(GOOD) is None
    assert pre_gen.first_error({**GOOD, "broadcast": False}) is None
    assert pre_gen.first_error({**GOOD, "broadcast_backend": "redis"}) is None
    assert pre_gen.first_error({**GOOD, "server": "uvicorn"}) is None
    assert pre_gen.first_error({**GOOD, "users": True}) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project_name", ""),
        ("project_name", "two\nlines"),
        ("project_slug", "Has Spaces"),
        ("project_slug", "Capital"),
        ("project_slug", "-leading"),
        ("project_slug", "9lives"),
        ("package_name", "not-an-identifier"),
        ("package_name", "class"),
        ("package_name", "uvicorn"),
        ("server", "gunicorn"),
        ("package_name", "match"),
        ("package_name", "CamelCase"),
        ("package_name", "asyncio"),
        ("package_name", "quart"),
        ("broadcast", "yes"),
        ("broadcast_backend", "kafka"),
        ("users", "no"),
    ],
)
def test_bad_answer_names_its_field(field: str, value: object) -> None:
    error = pre_gen.first_error({**GOOD, field: value})
    assert error is not None
    assert error.startswith(f"{field}:")
    assert "\n" not in error


@pytest.mark.parametrize(("version", "ok"), [("2.6.0", False), ("2.7.1", True), ("3.0", True)])
def test_old_cookiecutter_is_refused(version: str, ok: bool) -> None:
    error = pre_gen.check_cookiecutter(version)
    assert (error is None) == ok
    if error:
        assert error.startswith("cookiecutter:")


def test_redis_backend_needs_broadcast() -> None:
    error = pre_gen.first_error({**GOOD, "broadcast": False, "broadcast_backend": "redis"})
    assert error is not None and error.startswith("broadcast_backend:")


def test_users_need_broadcast() -> None:
    error = pre_gen.first_error({**GOOD, "broadcast": False, "users": True})
    assert error is not None and error.startswith("users:") and "broadcast=true" in error


def copy_template(tmp_path: Path) -> Path:
    """The unrendered project folder, named as if rendered with the defaults."""
    source = ROOT / "{{cookiecutter.project_slug}}"
    project = tmp_path / "project"
    shutil.copytree(source, project)
    (project / "{{cookiecutter.package_name}}").rename(project / "quart_ws_app")
    return project


def test_post_gen_keeps_the_chosen_broker(tmp_path: Path) -> None:
    project = copy_template(tmp_path)
    post_gen.apply_options(project, {**GOOD, "broadcast_backend": "redis"})
    broadcast = project / "quart_ws_app" / "broadcast"
    assert (broadcast / "broker.py").exists()  # the protocol
    assert [path.name for path in broadcast.glob("broker_*.py")] == ["broker_redis.py"]
    tests = project / "tests" / "broadcast"
    assert (tests / "redis" / "test_redis.py").exists()
    assert not (tests / "memory").exists()
    assert not (broadcast / "worker_lock.py").exists()  # the memory backend's guard
    assert (broadcast / "redis_shards.py").exists()


def test_post_gen_removes_broadcast_files(tmp_path: Path) -> None:
    project = copy_template(tmp_path)
    post_gen.apply_options(project, {**GOOD, "broadcast": False})
    names = {path.name for path in project.rglob("*")}
    assert not (project / "quart_ws_app" / "broadcast").exists()
    assert not (project / "tests" / "broadcast").exists()
    assert not (project / "tests" / "browser" / "broadcast").exists()
    for gone in (
        "hub.py",
        "broker.py",
        "broker_memory.py",
        "test_broadcast.py",
        "test_rooms.py",
        "test_rooms_page.py",
        "test_broadcast_page.py",
    ):
        assert gone not in names


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_post_gen_keeps_users_with_the_chosen_presence_store(tmp_path: Path, backend: str) -> None:
    project = copy_template(tmp_path)
    post_gen.apply_options(project, {**GOOD, "users": True, "broadcast_backend": backend})
    users = project / "quart_ws_app" / "users"
    assert [path.name for path in users.glob("presence_*.py")] == [f"presence_{backend}.py"]
    tests = [path.name for path in (project / "tests" / "users").iterdir() if path.is_dir()]
    assert tests == [backend]  # the store's own tests
    assert (project / "tests" / "browser" / "users").is_dir()


def test_post_gen_removes_users_files(tmp_path: Path) -> None:
    project = copy_template(tmp_path)
    post_gen.apply_options(project, GOOD)
    for gone in ("quart_ws_app/users", "tests/users", "tests/browser/users"):
        assert not (project / gone).exists()


def test_post_gen_keeps_the_uvicorn_entry_point_only_for_uvicorn(tmp_path: Path) -> None:
    hypercorn = copy_template(tmp_path / "hypercorn")
    post_gen.apply_options(hypercorn, GOOD)
    assert not (hypercorn / "quart_ws_app" / "__main__.py").exists()
    assert not (hypercorn / "tests" / "uvicorn").exists()
    uvicorn = copy_template(tmp_path / "uvicorn")
    post_gen.apply_options(uvicorn, {**GOOD, "server": "uvicorn"})
    assert "uvicorn.run(" in (uvicorn / "quart_ws_app" / "__main__.py").read_text()
    assert (uvicorn / "tests" / "uvicorn" / "test_main.py").exists()
    assert (uvicorn / "quart_ws_app" / "hypercorn_config.py").exists()  # Hypercorn keeps working


def test_next_steps_give_the_production_command() -> None:
    hypercorn = (
        "hypercorn --config python:quart_ws_app.hypercorn_config --worker-class uvloop"
        " quart_ws_app:app"
    )
    assert hypercorn in post_gen.next_steps(GOOD)
    assert "python -m quart_ws_app" in post_gen.next_steps({**GOOD, "server": "uvicorn"})


def test_next_steps_name_the_project() -> None:
    text = post_gen.next_steps(GOOD)
    assert "cd quart-ws-app" in text
    assert "quart_ws_app:app" in text
    assert "redis" not in text
    assert "redis-server" in post_gen.next_steps({**GOOD, "broadcast_backend": "redis"})


def test_post_gen_keeps_ci_files_only_for_github(tmp_path: Path) -> None:
    github = copy_template(tmp_path / "github")
    post_gen.apply_options(github, GOOD)
    assert (github / ".github" / "workflows" / "ci.yml").is_file()
    assert (github / ".github" / "dependabot.yml").is_file()
    none = copy_template(tmp_path / "none")
    post_gen.apply_options(none, {**GOOD, "ci": "none"})
    assert not (none / ".github").exists()
    assert (none / ".pre-commit-config.yaml").is_file()  # not tied to a forge


def test_post_gen_keeps_the_proxy_only_for_redis(tmp_path: Path) -> None:
    memory = copy_template(tmp_path / "memory")
    post_gen.apply_options(memory, GOOD)
    assert not (memory / "nginx.conf").exists()
    redis = copy_template(tmp_path / "redis")
    post_gen.apply_options(redis, {**GOOD, "broadcast_backend": "redis"})
    assert (redis / "nginx.conf").is_file()


def test_post_gen_keeps_the_redis_routing_only_for_redis(tmp_path: Path) -> None:
    memory = copy_template(tmp_path / "memory")
    post_gen.apply_options(memory, GOOD)
    assert not (memory / "quart_ws_app" / "broadcast" / "redis_shards.py").exists()
    assert (memory / "quart_ws_app" / "broadcast" / "broker_memory.py").is_file()
