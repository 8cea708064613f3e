"""A PostgreSQL cluster of one's own, to stop, restart and terminate without touching anyone's.

The shared server at 127.0.0.1:5432 serves every test session on the box, so tests and fault
scripts that take PostgreSQL away create a throwaway cluster with Debian's ``initdb`` in a
temporary folder (trust authentication, 127.0.0.1 only, a port the OS chose, its socket in the
same folder) and drive it with ``pg_ctl``. PostgreSQL refuses to run as root, so as root the
cluster belongs to the ``postgres`` system user (``runuser``); as anyone else, to them.

`require_private_postgres()` skips with a visible reason when ``initdb`` is missing, except
under ``STETGATE_REQUIRE_PG_CLUSTER=1`` (CI), where that is an error.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

REQUIRE_ENV = "STETGATE_REQUIRE_PG_CLUSTER"


def postgres_bindir() -> Path | None:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin), else the
    folder of an ``initdb`` on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def missing_reason() -> str | None:
    """Why a private cluster cannot be made here, or None."""
    if postgres_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to own a private cluster"
        if shutil.which("runuser") is None:
            return "running as root without runuser"
    return None


def require_private_postgres() -> None:
    """Skip the calling test (or module) unless a private cluster can be made."""
    import pytest

    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        raise RuntimeError(f"{REQUIRE_ENV}=1 but {reason}")
    pytest.skip(reason, allow_module_level=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """One throwaway cluster: `start`, `stop` (``fast`` by default, as a restart or a failover
    does), `url`, `terminate_backends`, `destroy`."""

    def __init__(self, *, max_connections: int = 100, durable: bool = False) -> None:
        """``durable``: ``fsync`` on, as a bank runs it (tests leave it off: they never crash
        the machine, and it is faster)."""
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("initdb not found")
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="stetgate-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self.folder.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        settings = (
            f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
            f"unix_socket_directories = '{self.folder}'\nmax_connections = {max_connections}\n"
            f"fsync = {'on' if durable else 'off'}\nshared_buffers = 32MB\n"
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: disconnect every session (each gets SQLSTATE 57P01) and shut down."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def terminate_backends(self, database: str) -> int:
        """``pg_terminate_backend`` every other session on ``database``; how many."""
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": database},
            ).scalar_one()
        engine.dispose()
        return int(ended)

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


__all__ = ["PrivatePostgres", "missing_reason", "require_private_postgres"]
