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
    shutil.rmtree(root / package / "broadcast")
    remove(
        root,
        "tests/test_broadcast.py",
        "tests/test_outbox.py",
        "tests/test_rooms.py",
        "tests/test_rooms_redis.py",
        "tests/test_soak.py",
        "tests/soak.py",
        "tests/test_slow_client.py",
        "tests/test_flood.py",
        "tests/broadcasting.py",
        "tests/test_broker_memory.py",
        "tests/browser/test_broadcast_page.py",
        "tests/browser/test_rooms_page.py",
    )


def choose_broker(root: Path, package: str, backend: str) -> None:
    """Keep ``broadcast/broker_<backend>.py``; drop the others."""
    for other in BACKENDS:
        if other != backend:
            remove(root, f"{package}/broadcast/broker_{other}.py")
    if backend != "memory":  # its one-worker guard, and its histories' tests
        remove(root, f"{package}/broadcast/worker_lock.py", "tests/test_broker_memory.py")


def remove_redis_files(root: Path) -> None:
    remove(root, "tests/test_redis.py", "tests/test_rooms_redis.py", "tests/redis_server.py")


def remove_ci_files(root: Path) -> None:
    shutil.rmtree(root / ".github")


def apply_options(root: Path, answers: dict[str, Any]) -> None:
    package = answers["package_name"]
    if answers["ci"] != "github":
        remove_ci_files(root)
    if answers["server"] != "uvicorn":
        remove(root, f"{package}/__main__.py", "tests/test_main.py")  # serve with uvicorn
    if answers["broadcast"]:
        choose_broker(root, package, answers["broadcast_backend"])
    else:
        remove_broadcast_files(root, package)
    if answers["broadcast_backend"] != "redis":  # the pre-gen hook ties redis to broadcast
        remove_redis_files(root)
        remove(root, "nginx.conf")  # the proxy in front of several replicas
    if not answers["broadcast"] or answers["broadcast_backend"] != "memory":
        remove(root, "tests/test_one_worker.py")  # the memory backend's single process


def next_steps(answers: dict[str, Any]) -> str:
    slug, package = answers["project_slug"], answers["package_name"]
    if answers["server"] == "uvicorn":
        production = f"python -m {package}"
    else:
        production = f"hypercorn --config hypercorn.toml --worker-class uvloop {package}:app"
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
