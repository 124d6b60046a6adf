"""Helpers the benchmarks share to start servers of their own (daphne, HAProxy, a floor server) on a free local port.

The tests have their own (tests/ocpp/processes.py, tied to the test database and settings); a benchmark imports no
test module."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until something listens on `port`; SystemExit if `proc` exits first or nothing listens in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("server did not start")


def wait_closed(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until nothing listens on `port` any more (or `proc` has exited)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.02)


# --------------------------------------------------------------------------- the platform's processes

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CONFIG = ROOT / "docker" / "haproxy.cfg"  # the file docker/compose.yaml and the scale-out test use
HAPROXY_BACKENDS = ("web1", "web2")  # its servers (EVP_WEB1, EVP_WEB2)
# HAProxy needs two descriptors per connection and ~220 of its own; it cannot raise RLIMIT_NOFILE past the hard limit
# (20,000 in this container, not raisable without CAP_SYS_RESOURCE): "Cannot raise FD limit to 24019, limit is 20000"
# with maxconn 12,000. Past that, several HAProxy processes share the port (SO_REUSEPORT, HAProxy's default on Linux).
HAPROXY_OWN_FDS = 300


def daphne_command(port: int) -> list[str]:
    """The platform's daphne (evplatform.server: daphne with the settings' handshake and close timeouts)."""
    return [
        sys.executable,
        "-m",
        "evplatform.server",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "evplatform.asgi:application",
    ]


def start_daphne(port: int, env: dict[str, str], log: IO[bytes] | int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(daphne_command(port), cwd=ROOT, env=env, stdout=log, stderr=log)
    wait_port(port, proc)
    return proc


def haproxy_maxconn_limit() -> int:
    """The most connections one HAProxy process can hold under this machine's hard RLIMIT_NOFILE."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(100, (hard - HAPROXY_OWN_FDS) // 2)


def start_haproxy(
    port: int, backends: list[int], *, maxconn: int, instances: int, log: IO[bytes] | int
) -> list[subprocess.Popen[bytes]]:
    """`instances` HAProxy processes on docker/haproxy.cfg, all bound to 127.0.0.1:`port` (the kernel spreads the
    connections over them), each balancing over the daphnes on `backends` (two: the file names web1 and web2)."""
    if len(backends) != len(HAPROXY_BACKENDS):
        raise SystemExit(f"docker/haproxy.cfg has {len(HAPROXY_BACKENDS)} servers: run {len(HAPROXY_BACKENDS)} daphnes")
    if shutil.which("haproxy") is None:
        raise SystemExit("haproxy is not installed (Debian's haproxy: see the Makefile's test target)")
    env = {
        **os.environ,
        "EVP_LB_BIND": f"127.0.0.1:{port}",
        "EVP_LB_MAXCONN": str(maxconn),
        **{f"EVP_WEB{n}": f"127.0.0.1:{backend}" for n, backend in enumerate(backends, 1)},
    }
    procs = []
    for _ in range(instances):
        procs.append(subprocess.Popen(["haproxy", "-db", "-f", str(HAPROXY_CONFIG)], env=env, stdout=log, stderr=log))
        wait_port(port, procs[-1])
    time.sleep(0.5)  # a second instance that could not bind exits at once
    for proc in procs:
        if proc.poll() is not None:
            raise SystemExit(f"haproxy exited with {proc.returncode}")
    return procs


def stop(proc: subprocess.Popen[bytes], grace: float = 60) -> None:
    """SIGTERM (the graceful stop), SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
