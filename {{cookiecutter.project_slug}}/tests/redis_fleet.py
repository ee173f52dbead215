"""Redis past one node, for the tests: a Sentinel set (one master, one replica,
three sentinels) and a three-master Redis Cluster, real processes on 127.0.0.1.

Like ``redis_server.py``, every process is told a port from ``unreserved_ports()``
(redis-server cannot bind port 0 and say which port it got, and a Cluster node
needs a second port for its bus) and, should another server hold one, is started
again on others. Each set lives in its own temporary folder: sentinels and
cluster nodes rewrite their configuration files there, never in the project.
"""

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pytest
from redis import Redis
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisError

from live_server import ADDRESS_IN_USE, PORT_ATTEMPTS, unreserved_ports
from redis_server import find_redis

SERVICE = "gatekeeper"  # the sentinels' name for the master
DOWN_AFTER_MS = 1000  # how long a silent master takes to be declared down


def find_program(name: str, package: str) -> str:
    """A Redis program, or skip (fail where REQUIRE_REDIS is set) saying so loudly."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name.upper()} NOT FOUND: these Redis tests did NOT run (apt-get install {package})"
    if os.environ.get("REQUIRE_REDIS"):
        pytest.fail(message)
    pytest.skip(message)


def answers(port: int) -> bool:
    try:
        with Redis(port=port, socket_timeout=1) as client:
            return bool(client.ping())
    except (OSError, RedisError):
        return False


class Process:
    """One redis-server (or sentinel) process on a port of its own."""

    def __init__(self, workdir: Path, name: str, command: Callable[[int], list[str]]) -> None:
        self.workdir = workdir
        self.name = name
        self.command = command  # port -> command line
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> "Process":
        for port in unreserved_ports():
            self.port = port
            if self._start():
                return self
        raise RuntimeError(f"{self.name} found no free port in {PORT_ATTEMPTS} attempts")

    def _start(self) -> bool:
        with self.log_path.open("ab") as log:
            logged = log.tell()
            self.process = subprocess.Popen(
                self.command(self.port), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        deadline = time.monotonic() + 10
        while not answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with self.log_path.open("rb") as log:
                    log.seek(logged)
                    lines = log.read().decode(errors="replace")
                if ADDRESS_IN_USE in lines.lower():
                    return False
                raise RuntimeError(f"{self.name} did not start: {lines}")
            time.sleep(0.02)
        return True

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last word to anyone."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_command(redis_server: str, workdir: Path, *extra: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), *extra,
        ]  # fmt: skip

    return command


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"not within {timeout}s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


class SentinelSet:
    """One master, one replica, three sentinels watching them (quorum 2)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master: Process | None = None
        self.replica: Process | None = None
        self.sentinels: list[Process] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def __enter__(self) -> "SentinelSet":
        redis_server = find_redis()
        redis_sentinel = find_program("redis-sentinel", "redis-sentinel")
        try:
            self.master = Process(
                self.workdir, "master", server_command(redis_server, self.workdir)
            )
            self.master.start()
            replica_of = ("--replicaof", "127.0.0.1", str(self.master.port))
            command = server_command(redis_server, self.workdir, *replica_of)
            self.replica = Process(self.workdir, "replica", command).start()
            wait_until(self._replicating, 10, "the replica in sync with the master")
            for number in range(3):
                name = f"sentinel-{number}"
                self.sentinels.append(
                    Process(self.workdir, name, self._sentinel_command(redis_sentinel, name))
                )
                self.sentinels[-1].start()
            wait_until(self._watching, 15, "every sentinel knowing the replica and the others")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for process in [*self.sentinels, self.replica, self.master]:
            if process is not None:
                process.stop()

    def _sentinel_command(self, redis_sentinel: str, name: str) -> Callable[[int], list[str]]:
        assert self.master is not None
        master_port = self.master.port

        def command(port: int) -> list[str]:
            config = self.workdir / f"{name}.conf"  # a sentinel rewrites its own file
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            return [redis_sentinel, str(config)]

        return command

    def _replicating(self) -> bool:
        assert self.replica is not None
        with Redis(port=self.replica.port, socket_timeout=1) as client:
            return client.info("replication").get("master_link_status") == "up"

    def _watching(self) -> bool:
        for sentinel in self.sentinels:
            with Redis(port=sentinel.port, socket_timeout=1, decode_responses=True) as client:
                state = client.sentinel_master(SERVICE)
            if state["num-other-sentinels"] < 2 or state["num-slaves"] < 1:
                return False
        return True

    def master_port(self) -> int | None:
        """Where the sentinels say the master is, when all of them agree."""
        ports = set()
        for sentinel in self.sentinels:
            with Redis(port=sentinel.port, socket_timeout=1, decode_responses=True) as client:
                address = client.sentinel_get_master_addr_by_name(SERVICE)
            ports.add(int(address[1]) if address else None)
        return ports.pop() if len(ports) == 1 else None

    def client(self) -> Redis:
        """A client on the current master."""
        port = self.master_port()
        assert port is not None, "the sentinels disagree on the master"
        return Redis(port=port, socket_timeout=2, decode_responses=True)


class RedisClusterSet:
    """Three masters, no replicas, slots spread by redis-cli."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.nodes: list[Process] = []
        self.client: RedisCluster | None = None

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def __enter__(self) -> "RedisClusterSet":
        redis_server = find_redis()
        redis_cli = find_program("redis-cli", "redis-tools")
        try:
            for number in range(3):
                self.nodes.append(self._node(redis_server, number).start())
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                [redis_cli, "--cluster", "create", *addresses, "--cluster-replicas", "0",
                 "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            wait_until(self._ready, 20, "cluster_state:ok on every node")
            startup = [ClusterNode("127.0.0.1", node.port) for node in self.nodes]
            self.client = RedisCluster(startup_nodes=startup, decode_responses=True)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.client is not None:
            self.client.close()
        for node in self.nodes:
            node.stop()

    def _node(self, redis_server: str, number: int) -> Process:
        folder = self.workdir / f"node-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        bus_ports = unreserved_ports()
        base = server_command(redis_server, folder)

        def command(port: int) -> list[str]:
            # The bus port is chosen like the client port (port + 10000, the
            # default, could be in the ephemeral range); taken, the start fails
            # with "address already in use" and both are chosen again.
            return [
                *base(port), "--cluster-enabled", "yes", "--cluster-port", str(next(bus_ports)),
                "--cluster-config-file", str(folder / "nodes.conf"),
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip

        return Process(folder, f"node-{number}", command)

    def _ready(self) -> bool:
        for node in self.nodes:
            with Redis(port=node.port, socket_timeout=1, decode_responses=True) as client:
                if client.cluster("info").get("cluster_state") != "ok":
                    return False
        return True

    def node_of(self, key: str) -> int:
        """The port of the node that holds ``key``."""
        assert self.client is not None
        return self.client.get_node_from_key(key).port

    def flush(self) -> None:
        assert self.client is not None
        self.client.flushdb(target_nodes=RedisCluster.PRIMARIES)

    def lease_counts(self, prefix: str = "ws") -> dict[str, int]:
        """Open connections per identity, as the leases on every node count them."""
        assert self.client is not None
        counts = {}
        for node in self.nodes:
            with Redis(port=node.port, socket_timeout=2, decode_responses=True) as client:
                seconds, micros = client.time()
                now = seconds + micros / 1_000_000
                for key in client.scan_iter(f"{prefix}:leases:*"):
                    if count := client.zcount(key, f"({now}", "+inf"):
                        identity = key.removeprefix(f"{prefix}:leases:")
                        counts[identity.removeprefix("{").removesuffix("}")] = count
        return counts
