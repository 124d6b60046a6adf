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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError("daphne did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.unlink(missing_ok=True)


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
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.unlink(missing_ok=True)


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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.1)
        raise RuntimeError("haproxy did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.unlink(missing_ok=True)
