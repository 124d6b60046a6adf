"""A real streaming replica of the test cluster (pg_basebackup -R from the machine's PostgreSQL binaries), for the
read-replica tests (`DATABASE_REPLICA_URL`)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def _stack() -> Any:
    spec = importlib.util.spec_from_file_location("evp_stack", ROOT / "scripts" / "stack.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Replica:
    host: str  # its socket folder
    port: int

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@/{dbname}?host={quote(self.host, safe='')}&port={self.port}"

    def connect(self, dbname: str) -> psycopg.Connection[Any]:
        return psycopg.connect(host=self.host, port=self.port, user="postgres", dbname=dbname, autocommit=True)


def primary_params() -> dict[str, Any]:
    params = connection.settings_dict
    return {"host": params["HOST"] or "", "port": int(params["PORT"] or 5432), "user": params["USER"] or "postgres"}


def _lsn(cursor: Any, sql: str) -> str:
    cursor.execute(sql)
    return str(cursor.fetchone()[0])


def wait_replayed(standby: psycopg.Connection[Any], timeout: float = 60) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    with connection.cursor() as cursor:
        target = _lsn(cursor, "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout
    while True:
        row = standby.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()
        if row and row[0]:
            return
        assert time.monotonic() < deadline, f"the replica did not replay up to {target} within {timeout} s"
        time.sleep(0.1)


@contextmanager
def streaming_replica() -> Iterator[Replica]:
    """A hot standby of the test cluster, streaming from it; stopped and deleted afterwards."""
    primary = primary_params()
    if not primary["host"].startswith("/"):
        pytest.skip("needs the embedded cluster (a socket folder) to start a replica of; DATABASE_URL points elsewhere")
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'")
        bindir = Path(cursor.fetchone()[0])
    stack = _stack()
    datadir = Path(tempfile.mkdtemp(prefix="evp-replica-", dir="/var/tmp"))
    user = stack.pg_user()
    if user:
        shutil.chown(datadir, user, user)
    try:
        stack.as_pg(
            [
                str(bindir / "pg_basebackup"),
                "-h",
                primary["host"],
                "-p",
                str(primary["port"]),
                "-U",
                "postgres",
                "-D",
                str(datadir),
                "-R",  # standby.signal and primary_conninfo: it streams from the primary once started
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = stack.free_port()
        started = stack.as_pg(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(datadir),
                "-l",
                str(datadir / "server.log"),
                "-o",
                f"-k {datadir} -h '' -p {port} -c hot_standby=on",
                "-w",
                "-t",
                # a hot standby opens for reads only once it has a snapshot of the primary's running transactions:
                # while another test worker's transaction holds more than 64 subtransactions (savepoints that
                # wrote), it waits for that transaction's end (CI: 60 s were not enough twice in one run)
                "600",
                "start",
            ],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        assert started.returncode == 0, (datadir / "server.log").read_text(errors="replace")[-2000:]
        yield Replica(host=str(datadir), port=port)
    finally:
        stack.as_pg(
            [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(datadir, ignore_errors=True)
