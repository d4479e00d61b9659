"""Refuse bad answers before anything is generated.

Cookiecutter renders this file, then runs it; on exit status 1 it removes the
half-made project folder. Answers arrive as JSON (through ``tojson``) so that
quotes or backslashes in a name cannot break this script.
"""

from __future__ import annotations

import importlib.metadata
import json
import keyword
import re
import sys
from typing import Any

ANSWERS = r"""{{ cookiecutter | tojson }}"""

SLUG = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
BACKENDS = ("memory", "redis")
SERVERS = ("hypercorn", "uvicorn")
CI = ("github", "none")
MIN_COOKIECUTTER = (2, 7)
# Modules the generated app imports: a package of the same name would shadow them.
TAKEN = {
    "quart",
    "hypercorn",
    "uvicorn",
    "uvloop",
    "redis",
    "websockets",
    "werkzeug",
    "tests",
    "app",
}


def check_project_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "project_name: must not be empty"
    if "\n" in value or "\r" in value:
        return "project_name: must be a single line"
    return None


def check_project_slug(value: Any) -> str | None:
    if not isinstance(value, str) or not SLUG.fullmatch(value):
        return (
            f"project_slug: {value!r} is not a valid slug "
            "(lowercase letters, digits and hyphens, starting with a letter)"
        )
    return None


def check_package_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value.isidentifier():
        return f"package_name: {value!r} is not a Python identifier"
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        return f"package_name: {value!r} is a Python keyword"
    if not PACKAGE.fullmatch(value):
        return f"package_name: {value!r} must be lowercase ASCII (PEP 8)"
    if value in sys.stdlib_module_names or value in TAKEN:
        return f"package_name: {value!r} would shadow the module of the same name"
    return None


def check_broadcast(broadcast: Any, backend: Any) -> str | None:
    if not isinstance(broadcast, bool):
        return f"broadcast: {broadcast!r} is not a boolean (use true or false)"
    if backend not in BACKENDS:
        return f"broadcast_backend: {backend!r} is not one of {', '.join(BACKENDS)}"
    if backend != "memory" and not broadcast:
        return f"broadcast_backend: {backend!r} needs broadcast=true"
    return None


def check_users(users: Any, broadcast: Any) -> str | None:
    if not isinstance(users, bool):
        return f"users: {users!r} is not a boolean (use true or false)"
    if users and not broadcast:
        return "users: true needs broadcast=true (presence and messages travel with broadcasts)"
    return None


def check_server(value: Any) -> str | None:
    if value not in SERVERS:
        return f"server: {value!r} is not one of {', '.join(SERVERS)}"
    return None


def check_ci(value: Any) -> str | None:
    if value not in CI:
        return f"ci: {value!r} is not one of {', '.join(CI)}"
    return None


def check_cookiecutter(version: str) -> str | None:
    """Older cookiecutters pass ``broadcast=false`` on the command line as a string."""
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if numbers < MIN_COOKIECUTTER:
        wanted = ".".join(map(str, MIN_COOKIECUTTER))
        return f"cookiecutter: version {version} is too old, {wanted} or newer is needed"
    return None


def installed_cookiecutter() -> str:
    try:
        return importlib.metadata.version("cookiecutter")
    except importlib.metadata.PackageNotFoundError:  # run by something else: trust it
        return ".".join(map(str, MIN_COOKIECUTTER))


def first_error(answers: dict[str, Any]) -> str | None:
    """Return a one-line message naming the first bad field, or None."""
    checks = (
        check_cookiecutter(installed_cookiecutter()),
        check_project_name(answers.get("project_name")),
        check_project_slug(answers.get("project_slug")),
        check_package_name(answers.get("package_name")),
        check_broadcast(answers.get("broadcast"), answers.get("broadcast_backend")),
        check_users(answers.get("users"), answers.get("broadcast")),
        check_server(answers.get("server")),
        check_ci(answers.get("ci")),
    )
    return next((error for error in checks if error), None)


def main() -> int:
    error = first_error(json.loads(ANSWERS))
    if error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
