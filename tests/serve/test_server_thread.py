"""ServerThread (the sweep's and the tests' in-process server) answers without Nagle's delay.

A connection accepted from a listening socket made without a named protocol
kept Nagle's algorithm on (asyncio sets TCP_NODELAY only on IPPROTO_TCP
sockets), so a response written in two pieces waited for the client's delayed
ACK, about 40 ms a request on a kept-alive connection: every latency the sweep
measured carried it. Proved from the accepted sockets' own option, not a stopwatch.
"""
from __future__ import annotations

import socket

import httpx

from stockdag.serve import ServerThread


async def _app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def test_accepted_connections_have_nagle_off():
    with ServerThread(_app) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/").text == "ok"  # the connection stays open (keep-alive), as the load generator's do
        connections = list(server.server.server_state.connections)
        assert connections
        options = {c.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                   for c in connections}
    assert options == {1}
