"""Serve the sandbox without gunicorn: in a background thread for tests, or from the command line.

    python -m sandbox.payment_provider.server --port 8190

Tests (the sandbox's and the payments service's) start a real HTTP server on a random port:

    server = start_in_thread(prefix=f"provider-test-{uuid.uuid4().hex}")
    ...  # talk to server.url
    server.stop()
"""

from __future__ import annotations

import argparse
import socketserver
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sandbox.payment_provider.app import PaymentProvider, create_app


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """One thread per request, like gunicorn's threads: a slow or hanging request blocks no other."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that timed out and went away before the answer is part of the game, not an error.
        pass


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:
        pass


class BackgroundServer:
    """A sandbox listening on 127.0.0.1 in a daemon thread."""

    def __init__(self, app: PaymentProvider, port: int = 0) -> None:
        self.app = app
        self.httpd = make_server(
            "127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # A short poll interval: stop() (every test's teardown) returns within 50 ms, not 500.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="payment-provider",
            daemon=True,
        )
        self.thread.start()

    def stop(self, *, wipe: bool = True) -> None:
        """Stop serving and (by default) delete every Redis key of this sandbox's prefix."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if wipe:
            self.app.store.wipe()


def start_in_thread(*, prefix: str, redis_url: str | None = None, port: int = 0) -> BackgroundServer:
    return BackgroundServer(create_app(redis_url=redis_url, prefix=prefix), port=port)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the payment-provider sandbox (development only).")
    parser.add_argument("--port", type=int, default=8190)
    parser.add_argument("--prefix", default=None, help="Redis key prefix (default: PROVIDER_REDIS_PREFIX)")
    args = parser.parse_args()
    httpd = make_server(
        "127.0.0.1", args.port, create_app(prefix=args.prefix), server_class=_ThreadingWSGIServer
    )
    print(f"payment-provider sandbox on http://127.0.0.1:{args.port}")
    httpd.serve_forever()


if __name__ == "__main__":
    main()
