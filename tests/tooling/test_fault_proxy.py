"""The chaos suite's fault proxy (benchmarks/chaos/proxy.py) against a real echo server on loopback."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from benchmarks.chaos.proxy import FaultProxy


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    link = FaultProxy("127.0.0.1", server.server_address[1]).start()
    yield link
    link.stop()
    server.shutdown()
    server.server_close()


def connect(link: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", link.listen_port), timeout=5)


def round_trip(client: socket.socket, payload: bytes) -> bytes:
    client.sendall(payload)
    received = b""
    while len(received) < len(payload):
        received += client.recv(4096)
    return received


def test_it_forwards_both_ways_and_adds_latency_when_told(proxy):
    with connect(proxy) as client:
        assert round_trip(client, b"hello") == b"hello"
        proxy.slow(0.2)
        started = time.monotonic()
        assert round_trip(client, b"slow") == b"slow"
        assert time.monotonic() - started >= 0.4  # 0.2 s each way


def test_a_stalled_link_holds_the_bytes_until_it_heals(proxy):
    with connect(proxy) as client:
        assert round_trip(client, b"before") == b"before"
        proxy.stall()
        client.sendall(b"held")
        threading.Timer(0.5, proxy.heal).start()
        healed_after = time.monotonic() + 0.5
        assert client.recv(4096) == b"held"
        assert time.monotonic() >= healed_after - 0.05  # it came through only once the link healed


def test_a_reset_drops_open_connections_and_new_ones_until_it_heals(proxy):
    with connect(proxy) as open_before:
        assert round_trip(open_before, b"x") == b"x"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            round_trip(open_before, b"y")
    with pytest.raises(ConnectionResetError), connect(proxy) as during:  # reset at connect or at once after
        round_trip(during, b"z")
    proxy.heal()
    with connect(proxy) as after:
        assert round_trip(after, b"back") == b"back"
