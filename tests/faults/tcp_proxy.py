"""A small fault-injecting TCP proxy for the fault tests (no external tool).

``TcpProxy(target_host, target_port).start()`` listens on a free local port and forwards
every connection to the target, in an asyncio loop of its own thread (so synchronous test
code and other event loops can drive it). Faults:

- ``cut("refuse")``: close every proxied connection (both sides) and stop listening, so
  new connections are refused at once (``ConnectionRefusedError``);
- ``cut("blackhole")``: close every proxied connection and accept new ones without ever
  forwarding a byte (clients wait for their own timeouts);
- ``heal()``: listen and forward again, on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from typing import Any, Literal

Mode = Literal["refuse", "blackhole"]


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.mode: Mode | None = None  # None: healthy
        self.connections = 0  # accepted since start
        self.cut_connections = 0  # closed by a cut
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()

    # -- driven from any thread ------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self, mode: Mode = "refuse") -> None:
        self._call(self._cut(mode))

    def heal(self) -> None:
        self._call(self._heal())

    def close(self) -> None:
        self._call(self._cut("refuse"))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    # -- in the proxy's loop ---------------------------------------------------------------

    async def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def _cut(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            self.cut_connections += 1
            _abort(writer)
        self._writers.clear()

    async def _heal(self) -> None:
        self.mode = None
        for writer in list(self._held):
            _abort(writer)
        self._held.clear()
        if self._server is None:
            await self._listen()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "blackhole":
            self._held.add(writer)  # never answered; closed on heal
            return
        if self.mode == "refuse":
            _abort(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pipe(reader, upstream_writer, writer),
            self._pipe(upstream_reader, writer, upstream_writer),
        )

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if writer not in self._writers:
                    break  # cut meanwhile
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, other):
                self._writers.discard(w)
                _abort(w)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once (RST where possible), without waiting for buffered data."""
    transport = writer.transport
    with contextlib.suppress(Exception):
        transport.abort()
