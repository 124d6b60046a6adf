"""daphne as production starts it (`python -m evplatform.server`) listens with OCPP_LISTEN_BACKLOG, not Twisted's
50: a fleet reconnecting at once overflowed 50 and the kernel dropped the chargers' SYNs (evplatform/server.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from evplatform.server import with_backlog
from tests.ocpp.processes import Daphne

pytestmark = pytest.mark.django_db(transaction=True)


def test_tcp_and_tls_endpoints_get_the_backlog_unless_they_name_their_own() -> None:
    endpoints = [
        "tcp:port=8000:interface=127.0.0.1",
        "ocpptls:port=8443:privateKey=k.pem:certKey=c.pem",
        "tcp:port=9000:backlog=10",
        "unix:/run/daphne.sock",
    ]

    assert with_backlog(endpoints, 4096) == [
        "tcp:port=8000:interface=127.0.0.1:backlog=4096",
        "ocpptls:port=8443:privateKey=k.pem:certKey=c.pem:backlog=4096",
        "tcp:port=9000:backlog=10",
        "unix:/run/daphne.sock",
    ]


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs `ss` (Debian's iproute2) to read a socket's backlog")
def test_the_production_command_listens_with_the_configured_backlog() -> None:
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    daphne = Daphne(env={"OCPP_LISTEN_BACKLOG": "1000"}).start()
    try:
        listening = subprocess.run(
            ["ss", "-Hltn", f"sport = :{daphne.port}"], capture_output=True, text=True, check=True
        ).stdout.split()
    finally:
        daphne.stop()

    # ss prints, for a listening socket: State Recv-Q Send-Q (its backlog) Local Peer
    assert int(listening[2]) == min(1000, somaxconn)
