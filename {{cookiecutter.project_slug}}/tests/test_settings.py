"""The README's settings table is the app's own: each setting, with its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from {{ cookiecutter.package_name }}.app import create_app
from {{ cookiecutter.package_name }}.config import BOOLEANS, DEFAULTS, POSITIVE_INTS

README = Path(__file__).parents[1] / "README.md"
ROW = re.compile(r"^\| `QUART_([A-Z0-9_]+)` \| (.+?) \|", re.M)


def documented() -> dict[str, str]:
    """Setting -> the default the README's Configure table gives it."""
    text = README.read_text()
    section = text[text.index("## Configure") :]
    section = section[: section.index("\n## ", 1)]
    return dict(ROW.findall(section))


def as_documented(value: Any) -> str:
    if value is None or value == "":
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_the_table_lists_every_setting_of_the_app_and_no_other() -> None:
    assert sorted(documented()) == sorted(DEFAULTS)


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_each_documented_default_is_the_apps(name: str) -> None:
    default, given = DEFAULTS[name], documented()[name]
    if default is None and given != "unset":  # worked out from another setting
        assert "`QUART_" in given, given
    else:
        assert given == as_documented(default)


@pytest.mark.parametrize("name", [*POSITIVE_INTS, *BOOLEANS])
def test_a_bad_value_of_each_setting_stops_the_app_naming_it(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"QUART_{name}", "maybe" if name in BOOLEANS else "0")
    with pytest.raises(ValueError, match=f"QUART_{name}"):
        create_app()
