"""Helpers the benchmarks share to start servers of their own (daphne, HAProxy, a floor server) on a free local port.

The tests have their own (tests/ocpp/processes.py, tied to the test database and settings); a benchmark imports no
test module."""

from __future__ import annotations

import contextlib
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


def daphne_command(port: int, fd: int | None = None, own_port: int | None = None) -> list[str]:
    """The platform's daphne (evplatform.server: daphne with the settings' handshake and close timeouts), on the
    port, or on the listening socket `fd` it inherits (daphne's `--fd`, as systemd's socket activation hands it);
    with `own_port` also on a port of its own (where it alone answers: is it serving yet?)."""
    bind = ["--fd", str(fd)] if fd is not None else ["-b", "127.0.0.1", "-p", str(port)]
    if own_port is not None:
        bind += ["-e", f"tcp:port={own_port}:interface=127.0.0.1"]
    return [sys.executable, "-m", "evplatform.server", *bind, "evplatform.asgi:application"]


def listening_socket(port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` that the daphnes started with it adopt, the way systemd's socket
    activation hands a socket to a service: it stays open across a restart, so the kernel queues the connections
    that come while one process stops and the next starts (up to the backlog, OCPP_LISTEN_BACKLOG; SYNs past it are
    retried by the client's TCP) instead of refusing them."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(int(os.environ.get("OCPP_LISTEN_BACKLOG", "4096")))
    sock.set_inheritable(True)
    return sock


def wait_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the process answers `/healthz` on `port` (a socket it shares listens before it serves)."""
    deadline = time.monotonic() + timeout
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(request)
            if sock.recv(16).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.1)
    raise SystemExit("server did not start")


def start_daphne(
    port: int,
    env: dict[str, str],
    log: IO[bytes] | int,
    listening: socket.socket | None = None,
    *,
    beside: bool = False,
) -> subprocess.Popen[bytes]:
    """daphne on `port`, or on the `listening` socket (returns once it serves). `beside`: another daphne serves on
    that socket too (the one a warm restart replaces), so this one is asked on a port of its own whether it serves."""
    fd = listening.fileno() if listening is not None else None
    own_port = free_port() if beside else None
    proc = subprocess.Popen(
        daphne_command(port, fd, own_port),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        pass_fds=() if fd is None else (fd,),
    )
    if own_port is not None:
        wait_serving(own_port, proc)
    elif listening is None:
        wait_port(port, proc)
    else:
        wait_serving(port, proc)
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
