"""PostgreSQL clusters and Redis servers of a test's own, on free ports of 127.0.0.1, and a TCP
proxy that can partition a link to them.

Fault tests stop (``pg_ctl stop``, SIGSTOP) these, never the shared servers.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from .e2e import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def scratch_root(prefix: str) -> Path:
    """A fresh folder for a test's own servers (the postgres user's, when we are root); skips the
    test when the PostgreSQL server binaries or redis-server are missing."""
    missing = [tool for tool in ("redis-server", "psql") if shutil.which(tool) is None]
    if missing or not (PG_BIN / "initdb").exists():
        pytest.skip(f"needs PostgreSQL 15 server binaries in {PG_BIN} and {', '.join(missing) or 'redis-server'}")
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    return root


def as_postgres(*command, **kwargs):
    """initdb refuses to run as root: run the cluster as the postgres user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *map(str, command)], check=True, capture_output=True, **kwargs)


class Cluster:
    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.data = root / "data"

    def init(self):
        as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")

    def start(self):
        as_postgres(
            PG_BIN / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "postgres.log",
            "-w",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self):
        as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def hang(self):
        """SIGSTOP the postmaster and every backend: the server accepts TCP and never answers."""
        signal_tree(self.postmaster_pid, signal.SIGSTOP)

    def resume(self):
        signal_tree(self.postmaster_pid, signal.SIGCONT)

    def psql(self, database: str, sql: str) -> str:
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-At", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        ).stdout


class RedisServer:
    def __init__(self):
        self.port, self.process = free_port(), None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self):
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        self.process.wait(timeout=10)

    def hang(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def info(self, section: str) -> dict[str, str]:
        """``INFO <section>`` as a dict (redis-cli opens one connection of its own for it)."""
        output = subprocess.run(
            ["redis-cli", "-p", str(self.port), "INFO", section], check=True, capture_output=True, text=True
        ).stdout
        return dict(line.split(":", 1) for line in output.splitlines() if ":" in line)


class Partition:
    """A TCP proxy from a free port of 127.0.0.1 to ``target_port``; ``drop()`` cuts the link.

    Forwarding, it passes bytes and hang-ups both ways. Dropping, it reads what either side sends
    and throws it away, forwards nothing, passes no hang-up on and closes no socket; connections
    made meanwhile are accepted and never connected on. Both ends see a peer that stopped
    answering (its kernel still acknowledges: only a firewall can withhold that), not a refusal.
    """

    def __init__(self, target_port: int):
        self.target_port, self.port = target_port, free_port()
        self.dropping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = None

    def start(self):
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def drop(self):
        self.dropping.set()

    def stop(self):
        self.dropping.set()
        for sock in [self._listener, *self._sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # the listener was closed: stop() ran
                return
            self._sockets.append(client)
            if self.dropping.is_set():
                threading.Thread(target=self._pipe, args=(client, None), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket | None):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if self.dropping.is_set() or sink is None:
                if not data:
                    return  # the hang-up is lost too; the socket stays open
                continue  # read and thrown away: lost on the way
            try:
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process under it (from /proc), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, pending = [], [pid]
    while pending:
        current = pending.pop(0)
        tree.append(current)
        pending.extend(children.get(current, []))
    return tree


def signal_tree(pid: int, sig: int) -> None:
    for member in process_tree(pid):
        try:
            os.kill(member, sig)
        except ProcessLookupError:
            pass
