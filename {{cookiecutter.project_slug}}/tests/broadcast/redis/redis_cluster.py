"""A real Redis Cluster on 127.0.0.1: 3 masters and 3 replicas, for the cluster tests.

Each node is a redis-server with ``cluster-enabled``; ``redis-cli --cluster
create`` joins them and spreads the 16384 slots over the masters. A node also
binds its port + 10000 (the cluster bus), so ports are taken below 55536.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ...servers import listens
from .redis_server import ping, require_redis_server

NODES = 6  # 3 masters, each with one replica


def free_cluster_ports(count: int) -> list[int]:
    """``count`` consecutive ports, each free with its bus port (port + 10000)."""
    highest = min(ephemeral_ports_start(), 65536) - 10000 - count
    for _ in range(100):
        first = random.randrange(10000, max(highest, 10001))
        ports = list(range(first, first + count))
        if all(is_free(port) and is_free(port + 10000) for port in ports):
            return ports
    raise RuntimeError("no free ports for a Redis Cluster")


def ephemeral_ports_start() -> int:
    """The first port the kernel hands out to client sockets and ``bind(0)``."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_info(port: int) -> dict[str, str]:
    output = redis_cli(port, "cluster", "info")
    return dict(line.split(":", 1) for line in output.split() if ":" in line)


def cluster_ok(port: int) -> bool:
    return cluster_info(port).get("cluster_state") == "ok"


def synced(port: int) -> bool:
    """A master, or a replica whose link to its master is up."""
    info = redis_cli(port, "info", "replication")
    return "role:master" in info or "master_link_status:up" in info


def redis_cli(port: int, *arguments: str) -> str:
    command = ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout


class RedisCluster:
    """Start six cluster nodes, join them, and stop them all at the end."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.ports = free_cluster_ports(NODES)
        self.folder = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """One node's URL: the app finds the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        addresses = [f"127.0.0.1:{port}" for port in self.ports]
        create = ["redis-cli", "--cluster", "create", *addresses]
        created = subprocess.run(
            [*create, "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if created.returncode:
            output = created.stdout + created.stderr
            raise RuntimeError(f"redis-cli --cluster create failed:\n{output}")
        self.wait_until(lambda: all(cluster_ok(port) for port in self.ports))
        # A replica that has not synced yet would not take over from its master.
        self.wait_until(lambda: all(synced(port) for port in self.ports))

    def start_node(self, port: int) -> None:
        command = [self.binary, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
        command += ["--cluster-node-timeout", "1000", "--cluster-replica-validity-factor", "0"]
        command += ["--save", "", "--appendonly", "no", "--logfile", f"node-{port}.log"]
        self.processes[port] = subprocess.Popen(command, cwd=self.folder, stdout=subprocess.DEVNULL)
        self.wait_until(lambda: self.answers(port))

    def answers(self, port: int) -> bool:
        """Whether the node at ``port`` answers PING; an error with its log if it quit."""
        if self.processes[port].poll() is not None:
            log = (self.folder / f"node-{port}.log").read_text(errors="replace")
            raise RuntimeError(f"redis-server on port {port} quit:\n{log[-2000:]}")
        return ping(port) and listens(self.processes[port], port)

    def live_port(self) -> int:
        """A node that runs: the one to ask about the cluster."""
        return next(port for port, node in self.processes.items() if node.poll() is None)

    def masters(self) -> list[int]:
        """The ports of the masters that serve slots now."""
        found = []
        for line in redis_cli(self.live_port(), "cluster", "nodes").splitlines():
            fields = line.split()
            if "master" in fields[2] and "fail" not in fields[2] and len(fields) > 8:
                found.append(int(fields[1].split(":")[1].split("@")[0]))
        return sorted(found)

    def master_of(self, key: str) -> int:
        slot = int(redis_cli(self.live_port(), "cluster", "keyslot", key))
        for line in redis_cli(self.live_port(), "cluster", "nodes").splitlines():
            fields = line.split()
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for span in fields[8:]:
                low, _, high = span.partition("-")
                if low.isdigit() and int(low) <= slot <= int(high or low):
                    return int(fields[1].split(":")[1].split("@")[0])
        raise LookupError(f"no master serves slot {slot}")

    def node_id(self, port: int) -> str:
        return redis_cli(port, "cluster", "myid").strip()

    def move_slot_of(self, key: str, to_port: int) -> None:
        """Migrate the slot of ``key``, and its keys, to the master at ``to_port``.

        The steps of ``redis-cli --cluster reshard``, for one chosen slot.
        """
        slot = redis_cli(self.live_port(), "cluster", "keyslot", key).strip()
        source = self.master_of(key)
        source_id, target_id = self.node_id(source), self.node_id(to_port)
        redis_cli(to_port, "cluster", "setslot", slot, "importing", source_id)
        redis_cli(source, "cluster", "setslot", slot, "migrating", target_id)
        while keys := redis_cli(source, "cluster", "getkeysinslot", slot, "100").split():
            redis_cli(source, "migrate", "127.0.0.1", str(to_port), "", "0", "5000",
                      "keys", *keys)  # fmt: skip
        for master in self.masters():
            redis_cli(master, "cluster", "setslot", slot, "node", target_id)
        self.wait_until(lambda: self.master_of(key) == to_port)

    def kill(self, port: int) -> None:
        """``kill -9`` one node."""
        self.processes[port].kill()
        self.processes[port].wait()

    def replicated(self, master: int) -> bool:
        """Whether every replica of ``master`` has all it has written."""
        info = dict(
            line.split(":", 1) for line in redis_cli(master, "info", "replication").split()
            if ":" in line
        )  # fmt: skip
        offsets = [
            int(dict(pair.split("=") for pair in value.split(","))["offset"])
            for name, value in info.items() if name.startswith("slave") and "offset=" in value
        ]  # fmt: skip
        return bool(offsets) and min(offsets) >= int(info["master_repl_offset"])

    def serves_every_slot(self) -> bool:
        """Whether the cluster is whole: every slot served, by three live masters."""
        return cluster_ok(self.live_port()) and len(self.masters()) == 3

    def failed_over(self) -> bool:
        """Whether every slot is served again, by three live masters."""
        live = [port for port, node in self.processes.items() if node.poll() is None]
        masters = self.masters()
        return cluster_ok(live[0]) and len(masters) == 3 and set(masters) <= set(live)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                nodes = redis_cli(self.live_port(), "cluster", "nodes")
                raise RuntimeError(f"the Redis Cluster did not get there in time:\n{nodes}")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def running_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster(require_redis_server())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def shared_cluster() -> Iterator[RedisCluster]:
    """One Redis Cluster per run (per pytest-xdist worker), started by the first test to need it.

    Creating one takes seconds; the tests that share it each get a channel
    prefix of their own (``redis_cluster``), so none hears another's keys.
    """
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def redis_cluster(shared_cluster: RedisCluster, monkeypatch: pytest.MonkeyPatch) -> RedisCluster:
    """The shared Redis Cluster, every slot served, under a QUART_REDIS_CHANNEL of this test's own.

    A test may move slots between its masters; one that kills a node takes
    ``own_redis_cluster`` instead.
    """
    shared_cluster.wait_until(shared_cluster.serves_every_slot)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    monkeypatch.setenv("QUART_REDIS_CHANNEL", f"tests-{worker}-{uuid.uuid4().hex[:8]}:broadcast")
    return shared_cluster


@pytest.fixture
def own_redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster of this test's own (3 masters, 3 replicas): to kill a node of."""
    with running_cluster() as cluster:
        yield cluster
