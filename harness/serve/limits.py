"""Request limits and error plumbing: the body-size guard, the API error type, Starlette's errors as OpenAI's."""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.engine.errors import clip


class ApiError(Exception):
    """An error answered with OpenAI's error object (status, message, type, param, code)."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", *, param: str | None = None,
                 code: str | int | None = None, headers: dict | None = None) -> None:
        message = clip(message)  # a 100,000-character model name is not echoed back whole
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers


def http_error_response(exc: StarletteHTTPException, request=None):
    """Starlette's own errors (404 for an unknown path, 405 for a wrong method) as OpenAI's error object; both
    servers install it: the gateway answered ``{"detail": "Not Found"}``. With the request, a 404 or 405 names
    the method and path and the routes there are (it said only "Not Found" / "Method Not Allowed")."""
    from fastapi.responses import JSONResponse

    from harness.serve.protocol import error_body

    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    message = str(exc.detail)
    if request is not None and exc.status_code in (404, 405) and message in ("Not Found", "Method Not Allowed"):
        path = json.dumps(request.url.path, ensure_ascii=False)[1:-1]  # a control character escaped, not a line break
        asked = f"{request.method} {clip(path, max_len=80)}"
        routes = _routes(request.app)
        message = (f"{asked}: no such route (this server has {routes})" if exc.status_code == 404 else
                   f"{asked}: the route does not take {request.method} (this server has {routes})")
    return JSONResponse(error_body(message, kind, None, exc.status_code), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


def _routes(app) -> str:
    from fastapi.routing import APIRoute

    shown = [f"{'/'.join(sorted(r.methods - {'HEAD'}))} {r.path}" for r in app.routes
             if isinstance(r, APIRoute) and r.include_in_schema]
    return ", ".join(shown) or "no routes"


# The request line and headers together. uvicorn's HTTP parser (h11) is given the same bound (server.py), so a
# request over it gets our JSON 431 whether the parser or this middleware sees it first (h11 only measures
# what it has buffered while a request is incomplete: a header that arrives whole can pass it).
MAX_HEADER_BYTES = 64 * 1024
# Slow clients are bounded in time as well as size (docs/serve.md): the request line and headers must arrive
# within HEADER_TIMEOUT_S of the connection opening (or of the previous response), else a JSON 408 and the
# connection is closed (a quiet connection is just closed); the body within BODY_TIMEOUT_S of the handler's
# first read, else a 408. Without them a slow-loris client or a chunked body with no last chunk held a
# connection (and, for the body, a request handler) open for ever.
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
# A refused body is read and dropped before the 413 goes out, up to this much for this long: a connection
# closed with unread bytes is reset by the kernel, and the client (still sending) loses the answer it was sent
# ("peer closed connection" instead of a 413; a 10 MB body on a keep-alive connection). Past either bound
# the connection is closed as before.
DRAIN_MAX_BYTES = 64 << 20
DRAIN_MAX_S = 5.0


def error_body(status: int, message: str) -> bytes:
    """OpenAI's error object, the one shape every refusal has (the app's handlers, this module, server.py)."""
    return json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": status}}).encode()


class BodySizeLimit:
    """Pure ASGI middleware: bodies over ``max_bytes`` get a 413 before anything parses them, and a request line
    plus headers over :data:`MAX_HEADER_BYTES` a 431.

    A declared Content-Length is checked up front; a chunked body is counted as it arrives and cut off at
    the limit, so a client cannot make the server buffer more than ``max_bytes``.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + sum(
            len(name) + len(value) + 4 for name, value in headers)
        if size > MAX_HEADER_BYTES:
            await self._reject(send, 431, f"the request line and headers are larger than {MAX_HEADER_BYTES} bytes "
                                          "(send big values in the body)")
            return
        declared = dict(headers).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await self._reject(send, 400, "the Content-Length header is not a number")
                return
            if too_big:
                # A client that sent `Expect: 100-continue` waits for our word before it sends: reading would
                # invite the body.
                if int(declared) <= DRAIN_MAX_BYTES and dict(headers).get(b"expect", b"").lower() != b"100-continue":
                    await _drain(receive)
                await self._reject(send, 413, f"the request body is larger than {self.max_bytes} bytes")
                return
        seen = 0
        started = False
        body_done = False
        deadline: float | None = None

        async def counted_receive():
            nonlocal seen, body_done, deadline
            if body_done:  # later reads wait for a disconnect while a stream is sent: no deadline on those
                return await receive()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + BODY_TIMEOUT_S if deadline is None else deadline
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
            except asyncio.TimeoutError:
                raise _TimedOut() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if seen > self.max_bytes:
                    if not body_done:
                        await _drain(receive)
                        body_done = True
                    raise _TooLarge(self.max_bytes)
            else:
                body_done = True
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except _TooLarge:  # the body was drained where it was counted
            if not started:
                await self._reject(send, 413, f"the request body is larger than {self.max_bytes} bytes")
        except _TimedOut:
            if not started:
                await self._reject(send, 408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s "
                                              "(a chunked body needs its last, empty chunk)")

    @staticmethod
    async def _reject(send, status: int, message: str) -> None:
        body = error_body(status, message)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


async def _drain(receive) -> None:
    """Read and drop the rest of a request body (see :data:`DRAIN_MAX_BYTES`)."""
    loop = asyncio.get_running_loop()
    deadline, drained = loop.time() + DRAIN_MAX_S, 0
    while drained <= DRAIN_MAX_BYTES:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        drained += len(message.get("body", b""))


class _TooLarge(StarletteHTTPException):
    # An HTTPException, so FastAPI's body reader re-raises it (it turns other errors into a 400).
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes")


class _TimedOut(StarletteHTTPException):
    def __init__(self) -> None:
        super().__init__(408, f"the request body did not arrive within {BODY_TIMEOUT_S:g} s")
