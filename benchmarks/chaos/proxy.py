"""A TCP proxy whose link can be made slow, stalled or reset while the platform runs through it.

The chaos suite puts one between the platform and RabbitMQ (every publish, confirm and delivery) and
one between payments and the provider sandbox. No maintained fault proxy installs on these machines
without downloading a binary (Toxiproxy is a Go binary, not packaged by Debian), so this is a small
asyncio one with the three faults the scenarios need:

- latency: every chunk waits `seconds` before it is forwarded, both ways;
- stall: connections stay open and nothing is forwarded (a peer that hangs mid-conversation);
- reset: every open connection is reset (RST) and new ones are reset as they arrive.

It runs in a process of its own: in the load generator's process it competed for the interpreter with
the load's threads and slowed every message of the platform. The controlling process sets the fault in
shared memory; the proxy reads it before each chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
import struct
import time

CHUNK = 65536
PASS, LATENCY, STALL, RESET = range(4)
_context = multiprocessing.get_context("spawn")  # a clean interpreter: the caller runs threads


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, listen_port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self._mode = _context.Value("i", PASS)
        self._latency = _context.Value("d", 0.0)
        self._resets_asked = _context.Value("i", 0)
        self._resets_done = _context.Value("i", 0)
        self._port = _context.Value("i", listen_port)
        self._listening = _context.Event()
        self._process = _context.Process(
            target=serve,
            args=(upstream_host, upstream_port, self._port, self._mode, self._latency),
            kwargs={"resets": (self._resets_asked, self._resets_done), "listening": self._listening},
            daemon=True,
            name=f"fault-proxy-{upstream_port}",
        )

    @property
    def listen_port(self) -> int:
        return self._port.value

    def start(self) -> FaultProxy:
        self._process.start()
        if not self._listening.wait(30):
            raise RuntimeError("the fault proxy did not start")
        return self

    def heal(self) -> None:
        self._mode.value = PASS

    def slow(self, seconds: float) -> None:
        self._latency.value = seconds
        self._mode.value = LATENCY

    def stall(self) -> None:
        self._mode.value = STALL

    def reset(self) -> None:
        """Reset every open connection, and every new one until healed; returns once the proxy has."""
        self._mode.value = RESET
        with self._resets_asked.get_lock():
            self._resets_asked.value += 1
            asked = self._resets_asked.value
        deadline = time.monotonic() + 10
        while self._resets_done.value < asked:
            if time.monotonic() > deadline:
                raise RuntimeError("the fault proxy did not reset its connections")
            time.sleep(0.01)

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(10)


# The proxy's process


def serve(upstream_host, upstream_port, port, mode, latency, *, resets, listening) -> None:
    asyncio.run(_Proxy((upstream_host, upstream_port), port, mode, latency, resets, listening).run())


class _Proxy:
    def __init__(self, upstream, port, mode, latency, resets, listening) -> None:
        self.upstream, self.port, self.mode, self.latency, self.listening = (
            upstream,
            port,
            mode,
            latency,
            listening,
        )
        self.resets_asked, self.resets_done = resets
        self.writers: set[asyncio.StreamWriter] = set()

    async def run(self) -> None:
        server = await asyncio.start_server(self.accept, "127.0.0.1", self.port.value)
        self.port.value = server.sockets[0].getsockname()[1]
        self.listening.set()
        while True:  # resets asked for by the controller, applied to every open connection
            if self.resets_done.value < self.resets_asked.value:
                asked = self.resets_asked.value
                for writer in list(self.writers):
                    _reset(writer)
                self.writers.clear()
                self.resets_done.value = asked
            await asyncio.sleep(0.01)

    async def accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode.value == RESET:
            _reset(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client_writer)  # the upstream refused: so does the proxy
            return
        self.writers |= {client_writer, upstream_writer}
        await asyncio.gather(
            self.pump(client_reader, upstream_writer),
            self.pump(upstream_reader, client_writer),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            self.writers.discard(writer)
            writer.close()

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await self.while_stalled()
            data = await reader.read(CHUNK)
            if not data:
                writer.close()
                return
            await self.while_stalled()  # read before the stall began: held until it ends
            if self.mode.value == LATENCY:
                await asyncio.sleep(self.latency.value)
            writer.write(data)
            await writer.drain()

    async def while_stalled(self) -> None:
        while self.mode.value == STALL:
            await asyncio.sleep(0.02)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, not FIN: what a peer sees when a middlebox or the remote host drops the link."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):  # already closed by its peer: nothing left to reset
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
