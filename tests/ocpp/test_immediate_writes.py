"""Twisted's TCP writes as daphne runs them (apps/ocpp/daphne_patch.install_immediate_writes): a connection with
nothing buffered sends at once, without asking the reactor to watch the socket; what the kernel does not take is
buffered and sent by the reactor in order, as Twisted always did."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from twisted.internet import tcp

from apps.ocpp import daphne_patch


class WatchingReactor:
    """What a Connection asks of its reactor when it writes: to be watched for writing, or no more."""

    def __init__(self) -> None:
        self.writers: list[Any] = []
        self.added = 0

    def addWriter(self, writer: Any) -> None:
        self.added += 1
        if writer not in self.writers:
            self.writers.append(writer)

    def removeWriter(self, writer: Any) -> None:
        if writer in self.writers:
            self.writers.remove(writer)

    def addReader(self, reader: Any) -> None:
        pass

    def removeReader(self, reader: Any) -> None:
        pass


@pytest.fixture
def pair() -> Any:
    daphne_patch.install_immediate_writes()
    ours, theirs = socket.socketpair()
    reactor = WatchingReactor()
    connection = tcp.Connection(ours, None, reactor=reactor)  # type: ignore[arg-type]
    connection.connected = 1
    yield connection, theirs, reactor
    ours.close()
    theirs.close()


def received(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    chunks = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except BlockingIOError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def test_a_write_with_nothing_buffered_is_sent_at_once(pair: Any) -> None:
    connection, theirs, reactor = pair

    connection.write(b"\x81\x05hello")
    connection.write(b"\x81\x05world")

    assert received(theirs) == b"\x81\x05hello\x81\x05world"
    assert reactor.added == 0
    assert not connection.dataBuffer
    assert not connection._tempDataBuffer


def test_what_the_kernel_does_not_take_is_buffered_and_sent_in_order(pair: Any) -> None:
    connection, theirs, reactor = pair
    connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 4096  # 1 MiB: more than the socket's buffers hold

    connection.write(big)
    connection.write(b"after")  # queued behind the rest of `big`, not sent before it

    assert reactor.writers == [connection]  # the reactor sends the rest when the socket can take it
    got = received(theirs)
    assert 0 < len(got) < len(big)
    while reactor.writers:
        connection.doWrite()
        got += received(theirs)
    assert got == big + b"after"


def test_a_write_after_the_connection_is_lost_sends_nothing(pair: Any) -> None:
    connection, theirs, reactor = pair
    connection.connected = 0

    connection.write(b"late")

    assert received(theirs) == b""
    assert reactor.added == 0
