"""Real daphne processes for the cross-process and crash tests: same test database, same Redis, same
channel-layer prefix as the test process (so groups and presence are shared), each on its own loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings

from tests.asgi_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """DATABASE_URL of the server, pointing at this test run's database."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + quote(settings.DATABASES["default"]["NAME"])))


def server_env(**extra: str) -> dict[str, str]:
    """The environment of a platform process (daphne, Celery worker) of this test run: its database, Redis key
    prefixes and channel layer, production-like settings."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "evplatform.settings.dev",
        "DATABASE_URL": test_database_url(),
        "CHANNEL_LAYER_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "DEBUG": "0",
        "DB_CONN_MAX_AGE": "0",
        "OCPP_MESSAGE_LOG_FLUSH_MS": "100",
        **extra,
    }


def _wait_listening(proc: subprocess.Popen[bytes], port: int, log: Path, what: str, timeout: float) -> None:
    """Until `proc` accepts TCP connections on `port`; its log's tail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


def _stop(proc: subprocess.Popen[bytes] | None, log: Path, grace: float) -> None:
    """SIGTERM (the process's graceful stop), SIGKILL after `grace` seconds; its log removed."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    log.unlink(missing_ok=True)


class Daphne:
    def __init__(self, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/ocpp-test-daphne-{os.getpid()}-{self.port}.log")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Daphne:
        env = server_env(**self.env)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "evplatform.server",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "evplatform.asgi:application",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_listening(self.proc, self.port, self.log, "daphne", timeout)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        _stop(self.proc, self.log, grace=10)


class CeleryWorker:
    """A real Celery worker process consuming `queues`, with the environment of `server_env`."""

    def __init__(self, queues: list[str], env: dict[str, str] | None = None) -> None:
        self.queues = queues
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/test-celery-{os.getpid()}-{'-'.join(queues)[:60]}.log")

    def start(self) -> CeleryWorker:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "evplatform",
                    "worker",
                    "-Q",
                    ",".join(self.queues),
                    "-n",
                    f"{self.queues[0]}@%h",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "WARNING",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env=server_env(**self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        _stop(self.proc, self.log, grace=30)


class HAProxy:
    """Debian's HAProxy with the project's own configuration (docker/haproxy.cfg) in front of two daphnes."""

    CONFIG = ROOT / "docker" / "haproxy.cfg"

    def __init__(self, web1: Daphne, web2: Daphne) -> None:
        self.port = free_port()
        self.backends = {"web1": web1, "web2": web2}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"/tmp/test-haproxy-{os.getpid()}-{self.port}.log")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> HAProxy:
        env = {
            **os.environ,
            "EVP_LB_BIND": f"127.0.0.1:{self.port}",
            "EVP_WEB1": f"127.0.0.1:{self.backends['web1'].port}",
            "EVP_WEB2": f"127.0.0.1:{self.backends['web2'].port}",
        }
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_listening(self.proc, self.port, self.log, "haproxy", timeout)
        return self

    def stop(self) -> None:
        _stop(self.proc, self.log, grace=10)
