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

    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=5,
                            lifespan="on", ws="none")
    return uvicorn.Server(config)


def serve_forever(app, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Run uvicorn on ``sock`` until SIGINT/SIGTERM; the app's lifespan flushes telemetry on the way out."""
    make_server(app, log_level=log_level).run(sockets=[sock])
