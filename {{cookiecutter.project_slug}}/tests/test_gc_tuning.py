"""The serving process runs with the garbage-collector thresholds of gc_tuning.py."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from {{ cookiecutter.package_name }}.gc_tuning import THRESHOLDS

from .helpers import AppFactory


@pytest.fixture
def default_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("default_thresholds")
async def test_serving_raises_the_thresholds(make_app: AppFactory) -> None:
    await make_app()
    assert gc.get_threshold() == THRESHOLDS
