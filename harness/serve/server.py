"""Binding and running: a socket bound before uvicorn starts, so ``--port 0`` can report the port it got."""

from __future__ import annotations

import errno
import socket

from causalsre.errors import UserError


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError(f"cannot resolve host {host!r} ({exc.strerror})", "pass an address like 127.0.0.1") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "pick another --port (0 picks a free one)" if exc.errno == errno.EADDRINUSE else "check --host"
        raise UserError(f"cannot listen on {host}:{port} ({exc.strerror})", hint) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def make_server(app, *, log_level: str = "warning"):
    import uvicorn

    from harness.serve.limits import MAX_HEADER_BYTES

    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5,
                            lifespan="on", ws="none", http=json_error_protocol(),
                            h11_max_incomplete_event_size=MAX_HEADER_BYTES)
    return uvicorn.Server(config)


DRAIN_S = 1.0


def json_error_protocol():
    """uvicorn's h11 protocol, answering what its parser refuses with our JSON error object, not plain text.

    uvicorn sends "Invalid HTTP request received." as text/plain 400 for any request h11 cannot parse, and
    for one whose request line and headers outgrow the parser's buffer (a 200 KB header): clients of an
    OpenAI-compatible API read ``error.message`` from JSON. The oversized case is a 431, as h11 hints.
    """
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    from harness.serve.limits import HEADER_TIMEOUT_S, MAX_HEADER_BYTES, error_body

    class JsonErrorH11Protocol(H11Protocol):
        _draining = False
        _header_timer = None

        # The headers' deadline (limits.HEADER_TIMEOUT_S): armed when the connection opens and after each
        # response; uvicorn has none (its keep-alive timeout ends when the first byte of a request arrives).
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm_header_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_header_timer()

        def connection_lost(self, exc) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            super().connection_lost(exc)

        def _arm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
            self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_timed_out)

        def _headers_timed_out(self) -> None:
            self._header_timer = None
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                return  # a request is being read or answered: the body deadline and the engine's timeout apply
            if self.conn.trailing_data[0]:  # part of a request line or headers: say why before closing
                body = error_body(408, f"the request line and headers did not arrive within {HEADER_TIMEOUT_S:g} s")
                self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                                     b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
                                     + body)
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if not self._draining:
                super().data_received(data)

        def send_400_response(self, msg: str) -> None:
            buffered = len(self.conn.trailing_data[0])
            if buffered > MAX_HEADER_BYTES:
                status, message = 431, (f"the request line and headers are larger than {MAX_HEADER_BYTES} bytes "
                                        "(send big values in the body)")
            else:
                status, message = 400, "the request is not valid HTTP/1.1 (check the request line and headers)"
            body = error_body(status, message)
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                       (b"connection", b"close")]
            for event in (h11.Response(status_code=status, headers=headers), h11.Data(data=body), h11.EndOfMessage()):
                try:
                    self.transport.write(self.conn.send(event))
                except h11.LocalProtocolError:  # h11 refused to frame a response in this state: just close
                    break
            # Closing at once, with the rest of a 200 KB header still arriving, resets the connection and the
            # client may never read the answer: read and drop the rest for a moment, then close.
            self._draining = True
            self.loop.call_later(DRAIN_S, self.transport.close)

    return JsonErrorH11Protocol


def serve_forever(app, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Run uvicorn on ``sock`` until SIGINT/SIGTERM; the app's lifespan flushes telemetry on the way out."""
    make_server(app, log_level=log_level).run(sockets=[sock])
