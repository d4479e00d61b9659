"""CPU time and resident memory of a process tree, read from /proc (Linux)."""

from __future__ import annotations

import contextlib
from pathlib import Path

PROC = Path("/proc")


def tree(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_ns(root: int) -> int:
    """Nanoseconds of CPU used so far by every thread of the tree."""
    total = 0
    for pid in tree(root):
        for schedstat in PROC.glob(f"{pid}/task/*/schedstat"):
            with contextlib.suppress(OSError, IndexError):  # a thread that just ended
                total += int(schedstat.read_text().split()[0])
    return total


def rss_bytes(root: int) -> int:
    total = 0
    for pid in tree(root):
        try:
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total
