"""Without redis-server, a run of this project's tests is never green, and says why."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from ...servers import PROJECT_ROOT
from .redis_server import INSTALL_HINT


def test_without_redis_server_the_app_tests_fail_and_the_others_pass(tmp_path: Path) -> None:
    # PATH holds only this interpreter's folder: no redis-server, as on a
    # machine without Redis; nor this run's Redis settings.
    env = {name: value for name, value in os.environ.items() if "REDIS" not in name}
    env["PATH"] = str(Path(sys.executable).parent)
    report = tmp_path / "report.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"--junitxml={report}", "tests/test_settings.py", "tests/test_echo.py"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout[-2000:]
    outcomes: dict[str, list[str]] = {"tests.test_settings": [], "tests.test_echo": []}
    for case in ET.parse(report).iter("testcase"):
        problems = [*case.iter("error"), *case.iter("failure")]
        message = problems[0].get("message", "") if problems else ""
        outcomes[case.get("classname", "")].append(message)
    assert outcomes["tests.test_settings"] and not any(outcomes["tests.test_settings"])
    assert outcomes["tests.test_echo"]
    assert all(INSTALL_HINT in message for message in outcomes["tests.test_echo"])
