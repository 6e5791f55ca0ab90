"""A private security-group database for tests: ovsdb-server started in a unique
temporary directory, stopped by its pid; TCP ports chosen at runtime.  Safe
under pytest-xdist (nothing shared between tests).

Import the fixtures into a test module: `from ovsdb_fixtures import sgdb, run_cli`.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from polling import eventually

from sg_ofctl.ovsdb import server

ROOT = Path(__file__).resolve().parents[1]
SG_OFCTL = [sys.executable, "-m", "sg_ofctl.cli"]


def short_tmpdir(prefix: str = "sgt") -> Path:
    """Unix socket paths must stay short: /tmp/sgtXXXX, not pytest's deep tmp_path."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Database:
    """One standalone member in its own state directory."""

    def __init__(self, state_dir: Path):
        self.member = server.Member(state_dir)
        self.state_dir = state_dir

    @property
    def remote(self) -> str:
        return self.member.local_remote

    def start(self, **kwargs) -> dict:
        return server.start(self.member, **kwargs)

    def stop(self) -> None:
        server.stop(self.member)

    def close(self) -> None:
        """Stop it and remove its directory."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> "Database":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def new_database() -> Database:
    """`with new_database() as db:` a running database, gone afterwards."""
    return Database(short_tmpdir())


@pytest.fixture
def sgdb():
    """A fresh, running standalone database; yields a Database."""
    with new_database() as db:
        yield db


@pytest.fixture
def state_dir():
    """An empty state directory; any ovsdb-server started in it is stopped after."""
    state = short_tmpdir()
    try:
        yield state
    finally:
        server.stop(server.Member(state))
        shutil.rmtree(state, ignore_errors=True)


def run_cli(*argv: str, db: str | None = None, stdin: str | None = None
            ) -> tuple[int, str, str]:
    """sg_ofctl.cli.main in this process: (exit status, stdout, stderr)."""
    from sg_ofctl.cli import main
    args = (["--db", db] if db else []) + list(argv)
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(args)
            except SystemExit as e:       # argparse usage errors
                rc = e.code if isinstance(e.code, int) else 1
    finally:
        sys.stdin = old_stdin
    return rc, out.getvalue(), err.getvalue()


def ok(*argv: str, db: str | None = None, stdin: str | None = None) -> str:
    """Run the CLI in-process, assert success, return stdout."""
    rc, out, err = run_cli(*argv, db=db, stdin=stdin)
    assert rc == 0, f"sg-ofctl {' '.join(argv)} failed ({rc}): {err}"
    assert err == "", err
    return out


def subprocess_cli(*argv: str, env: dict | None = None, stdin: str | None = None,
                   timeout: float = 60) -> subprocess.CompletedProcess:
    """The real command, in a child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*SG_OFCTL, *argv], capture_output=True, text=True, input=stdin,
                          env=full_env, cwd=ROOT, timeout=timeout)


class Cluster:
    """Three clustered members on 127.0.0.1, each in its own state directory."""

    def __init__(self, size: int = 3):
        self.dirs = [short_tmpdir("sgc") for _ in range(size)]
        self.members = [server.Member(d) for d in self.dirs]
        self.raft = [f"tcp:127.0.0.1:{free_tcp_port()}" for _ in range(size)]
        self.client_ports = [free_tcp_port() for _ in range(size)]

    @property
    def remotes(self) -> str:
        return ",".join(f"tcp:127.0.0.1:{p}" for p in self.client_ports)

    def remote_of(self, index: int) -> str:
        return f"tcp:127.0.0.1:{self.client_ports[index]}"

    def start_member(self, index: int, attempts: int = 3) -> None:
        """`sg-ofctl db start --cluster ADDR [--join ADDR]` for member `index`.
        A port chosen free may be taken before ovsdb-server binds it: then
        start afresh on new ports."""
        for _attempt in range(attempts):
            join = [] if index == 0 else ["--join", self.raft[0]]
            rc, _, err = run_cli("--state-dir", str(self.dirs[index]), "db", "start",
                                 "--cluster", self.raft[index], *join, "--listen",
                                 f"127.0.0.1:{self.client_ports[index]}",
                                 "--insecure-plain-tcp")
            if rc == 0:
                return
            server.stop(self.members[index])
            for path in self.dirs[index].iterdir():
                path.unlink()
            self.raft[index] = f"tcp:127.0.0.1:{free_tcp_port()}"
            self.client_ports[index] = free_tcp_port()
        raise AssertionError(f"member {index} did not start: {err}")

    def start(self) -> None:
        for i in range(len(self.members)):
            self.start_member(i)
        self.wait_until(lambda: all(
            server.status(m).get("cluster_status") == "cluster member"
            for m in self.members), "all members joined")

    def leader(self) -> int:
        for i, member in enumerate(self.members):
            if member.pid() and server.status(member).get("cluster_role") == "leader":
                return i
        raise AssertionError("no leader")

    def wait_until(self, predicate, what: str, timeout: float = 30) -> None:
        eventually(predicate, timeout, 0.1, what, ignore=(Exception,))

    def stop(self) -> None:
        for member in self.members:
            server.stop(member)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cluster():
    c = Cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()
