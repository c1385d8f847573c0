"""A TCP proxy whose link can be made slow, stalled or reset while the platform runs through it.

The chaos suite's full set puts one between the platform and RabbitMQ (every publish, confirm and
delivery) and one between payments and the provider sandbox. No maintained fault proxy installs on
these machines without downloading a binary (Toxiproxy is a Go binary, not packaged by Debian), so this
is a small asyncio one with the three faults the scenarios need:

- latency: every chunk waits `seconds` before it is forwarded, both ways;
- stall: connections stay open and nothing is forwarded (a peer that hangs mid-conversation);
- reset: every open connection is reset (RST) and new ones are reset as they arrive.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

CHUNK = 65536


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, listen_port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_port = listen_port
        self.mode = "pass"
        self.latency = 0.0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"fault-proxy-{upstream_port}")

    # control, from any thread

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def heal(self) -> None:
        self._set("pass")

    def slow(self, seconds: float) -> None:
        self._set("latency", seconds)

    def stall(self) -> None:
        self._set("stall")

    def reset(self) -> None:
        self._set("reset")
        asyncio.run_coroutine_threadsafe(self._reset_all(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _set(self, mode: str, latency: float = 0.0) -> None:
        self.latency, self.mode = latency, mode

    # the proxy, on its own thread and event loop

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        )
        self._server = server
        self.listen_port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client_writer)  # the upstream refused: so does the proxy
            return
        self._writers |= {client_writer, upstream_writer}
        await asyncio.gather(
            self._pump(client_reader, upstream_writer),
            self._pump(upstream_reader, client_writer),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            self._writers.discard(writer)
            writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            while self.mode == "stall":
                await asyncio.sleep(0.05)
            data = await reader.read(CHUNK)
            if not data:
                writer.close()
                return
            while self.mode == "stall":  # read before the stall began: held until it ends
                await asyncio.sleep(0.05)
            if self.mode == "latency":
                await asyncio.sleep(self.latency)
            writer.write(data)
            await writer.drain()

    async def _shutdown(self) -> None:
        self._server.close()
        await self._reset_all()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _reset_all(self) -> None:
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN: what a peer sees when a middlebox or the remote host drops the link."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
