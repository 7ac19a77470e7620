"""Running the app under uvicorn: the port checked before anything loads, and a deadline
for receiving each request, which uvicorn does not have."""

from __future__ import annotations

import asyncio
import socket

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.errors import ConfigError
from rag.settings import Settings


class RequestDeadlineProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for receiving a whole request (headers
    and body), counted from the connection or from the previous response. uvicorn itself
    waits forever for headers that arrive a byte at a time (slow loris), each such
    connection held open; past the deadline the connection is closed."""

    request_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is h11.DONE:  # the request is in: the app has it now
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.conn.their_state is not h11.DONE and not self.transport.is_closing():
            self.transport.close()


def check_port_free(host: str, port: int) -> None:
    """Bind once before loading anything, so that a port in use is one line and exit 2,
    not a server that announces itself and then dies."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another "
                "port with --port or RAG_PORT, or stop what is using it"
            ) from None


def serve(settings: Settings) -> None:
    """Serve the API until interrupted."""
    from api.main import create_app

    check_port_free(settings.host, settings.port)
    protocol = type(
        "Protocol", (RequestDeadlineProtocol,), {"request_timeout": settings.request_timeout}
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=protocol,
        timeout_keep_alive=5,
        log_level="info",
    )
