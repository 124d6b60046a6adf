"""The project's ASGI application served by uvicorn inside the test's event loop, on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve_asgi() -> AsyncIterator[str]:
    """Yield `ws://127.0.0.1:<port>`; on exit stop the server and let every background DB write finish,
    so the test database can be flushed without racing a late disconnect handler or log flush."""
    from apps.ocpp import dbcall
    from apps.ocpp.logbuffer import buffer
    from evplatform.asgi import application

    port = free_port()
    config = uvicorn.Config(
        application,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        ws="websockets",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        await buffer.flush()
        await asyncio.get_running_loop().run_in_executor(None, dbcall.drain)
