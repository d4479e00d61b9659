"""Remove the files of disabled options and print the next steps.

Runs inside the freshly generated project. Whole optional features are whole
files, so turning one off is deleting them, not a maze of Jinja conditionals.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

ANSWERS = r"""{{ cookiecutter | tojson }}"""
BACKENDS = ("memory", "redis")


def remove(root: Path, *relative_paths: str) -> None:
    for relative in relative_paths:
        (root / relative).unlink(missing_ok=True)


def remove_broadcast_files(root: Path, package: str) -> None:
    for folder in (f"{package}/broadcast", "tests/broadcast", "tests/browser/broadcast"):
        shutil.rmtree(root / folder)
    static = f"{package}/static"
    remove(root, f"{static}/js/rooms.js", f"{static}/js/rooms_page.js", f"{static}/css/rooms.css")


def choose_broker(root: Path, package: str, backend: str) -> None:
    """Keep ``broadcast/broker_<backend>.py`` and the backend's tests; drop the others."""
    for other in BACKENDS:
        if other != backend:
            remove(root, f"{package}/broadcast/broker_{other}.py")
            shutil.rmtree(root / "tests" / "broadcast" / other)
    if backend != "memory":  # its one-worker guard
        remove(root, f"{package}/broadcast/worker_lock.py")
    if backend != "redis":  # where each topic lives in Redis
        remove(root, f"{package}/broadcast/redis_shards.py")


def choose_presence_store(root: Path, package: str, backend: str) -> None:
    """Keep ``users/presence_<backend>.py``, ``sessions_<backend>.py`` and tests/users/<backend>."""
    for other in BACKENDS:
        if other != backend:
            for store in ("presence", "sessions"):
                remove(root, f"{package}/users/{store}_{other}.py")
            shutil.rmtree(root / "tests" / "users" / other)


def remove_ci_files(root: Path) -> None:
    shutil.rmtree(root / ".github")


def apply_options(root: Path, answers: dict[str, Any]) -> None:
    package = answers["package_name"]
    if answers["ci"] != "github":
        remove_ci_files(root)
    if answers["server"] != "uvicorn":
        remove(root, f"{package}/__main__.py")  # serve with uvicorn
        shutil.rmtree(root / "tests" / "uvicorn")
    if not answers["users"]:
        for folder in (f"{package}/users", "tests/users", "tests/browser/users"):
            shutil.rmtree(root / folder)
        remove(root, f"{package}/static/js/users_page.js", f"{package}/static/css/users.css")
    else:
        choose_presence_store(root, package, answers["broadcast_backend"])
    if answers["broadcast"]:
        choose_broker(root, package, answers["broadcast_backend"])
    else:
        remove_broadcast_files(root, package)
    if answers["broadcast_backend"] != "redis":  # the pre-gen hook ties redis to broadcast
        remove(root, "nginx.conf")  # the proxy in front of several replicas


def next_steps(answers: dict[str, Any]) -> str:
    slug, package = answers["project_slug"], answers["package_name"]
    if answers["server"] == "uvicorn":
        production = f"python -m {package}"
    else:
        config = f"python:{package}.hypercorn_config"
        production = f"hypercorn --config {config} --worker-class uvloop {package}:app"
    lines = [
        f"Created {slug}/. Next:",
        f"  cd {slug}",
        "  python -m venv .venv && . .venv/bin/activate",
        "  pip install -e '.[test]'",
        f"  QUART_APP={package}:app quart run      # development, http://127.0.0.1:5000",
        "  pytest",
        f"  {production}      # production, http://127.0.0.1:8000",
    ]
    if answers["broadcast_backend"] == "redis":
        lines.append("The redis backend needs redis-server (Debian: apt-get install redis-server).")
    return "\n".join(lines)


def main() -> int:
    answers = json.loads(ANSWERS)
    apply_options(Path.cwd(), answers)
    print(next_steps(answers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
