"""The README's "Run it" command, run as a newcomer would: it serves the page and the echo."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .helpers import connect
from .servers import LiveServer, free_port, stop, wait_until_serving

README = Path(__file__).parents[1] / "README.md"


def run_it_command() -> str:
    """The last line of the README's "Run it" block, its comment left out."""
    section = README.read_text().split("## Run it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README.md's Run it section has no sh block"
    return block.group(1).strip().splitlines()[-1].split("#", 1)[0].strip()


def page(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


@contextmanager
def served_by_run_it() -> Iterator[LiveServer]:
    """The app, served by the README's command with only what it sets, on a free port."""
    *assignments, program, subcommand = shlex.split(run_it_command())
    assert (program, subcommand) == ("quart", "run")
    env = dict(os.environ)
{%- if cookiecutter.users %}
    del env["QUART_SECRET_KEY"]  # the tests' key (conftest.py): the command must do without
{%- endif %}
    env |= dict(assignment.split("=", 1) for assignment in assignments)
    port = free_port()
    env["QUART_RUN_PORT"] = str(port)  # quart run's --port
    executable = Path(sys.executable).with_name(program)  # this environment's own
    process = subprocess.Popen(
        [executable, subcommand], cwd=README.parent, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    server = LiveServer(process, port, "quart run")
    try:
        wait_until_serving(server)
        yield server
    finally:
        stop(process)


async def test_the_readme_run_it_command_serves_the_page_and_the_echo() -> None:
    with served_by_run_it() as server:
        assert page(server.http_url) == 200
{%- if cookiecutter.users %}
        assert page(f"{server.http_url}/login") == 200  # the demo login is on
{%- endif %}
        async with connect(f"{server.ws_url}/ws") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
