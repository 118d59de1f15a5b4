"""The FastAPI app: OpenAI-compatible routes over an :class:`~harness.serve.loop.EngineLoop`.

Every error a client can cause is a 4xx with OpenAI's ``{"error": {...}}`` object (FastAPI's 422 becomes a
400). 5xx is left for the server's own failures: the engine thread died (500, and /health answers 503), or
a request timed out in the engine or was cut by shutdown (503 with Retry-After).
"""

from __future__ import annotations

import asyncio
import hmac
import time
import weakref
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.serve import body as body_rules
from harness.serve import protocol as P
from harness.serve.body import validation_message
from harness.serve.limits import ApiError, BodySizeLimit, http_error_response
from harness.serve.loop import EngineLoop, Pending
from harness.serve.text import chat_text, prompt_ids, token_word

DISCONNECT_POLL_S = 0.5
POST_ERRORS = {200: {"description": "a completion (JSON), or server-sent events when stream is true",
                     "content": {"application/json": {}, "text/event-stream": {}}},
               **P.error_responses(400, 401, 404, 413, 429, 503)}


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema without its 422 answers: this server answers bad bodies with 400, as OpenAI does."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(loop: EngineLoop) -> FastAPI:
    """The app; its lifespan starts ``loop`` if needed and stops it (flushing telemetry) at shutdown."""
    settings = loop.settings
    model_name = settings.model_name

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if loop.engine is None:
            loop.start()
        try:
            yield
        finally:
            await asyncio.to_thread(loop.stop)

    app = FastAPI(title="causalsre serve", version="1", lifespan=lifespan,
                  description="The causalsre engine behind an OpenAI-compatible API (see docs/serve.md).")
    app.add_middleware(BodySizeLimit, max_bytes=settings.serve.max_body_bytes)
    app.openapi = lambda: _openapi(app)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(P.error_body(exc.message, exc.type, exc.param, exc.code), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        message, param = validation_message(exc)
        return JSONResponse(P.error_body(message, "invalid_request_error", param, None), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return http_error_response(exc, request)

    async def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise ApiError(401, "invalid or missing API key: send 'Authorization: Bearer KEY'",
                           "authentication_error", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    class CheckedBody(APIRoute):
        """A POST route checks the key, then the body's headers and bytes (:mod:`harness.serve.body`), before
        FastAPI reads the body as JSON: it answered a gzip or non-UTF-8 body with "There was an error parsing
        the body", and a wrong Content-Type with "Input should be a valid dictionary"."""

        def get_route_handler(self):
            handler = super().get_route_handler()

            async def checked(request: Request) -> Response:
                if request.method == "POST":
                    await require_key(request)  # 401 before any word about the body, as vLLM answers
                    raw = await request.body()  # kept on the request: FastAPI reads it from there
                    if raw.strip():  # no body at all is answered by the model's "the request body is empty"
                        problem = body_rules.header_problem(request.headers)
                        if problem is None:
                            value, problem = body_rules.read_json(raw)  # the gateway's reader: no NaN
                            request._json = value  # Starlette's cache of request.json(): not parsed again
                        if problem is not None:
                            raise ApiError(400, problem)
                    elif raw:  # blanks only: empty, as on the gateway (it was "not valid JSON")
                        raise ApiError(400, body_rules.empty_message())
                return await handler(request)

            return checked

    app.router.route_class = CheckedBody  # for the routes added below

    @app.get("/health", response_class=Response, responses=P.error_responses(503))
    async def health():
        if loop.error is not None:
            return JSONResponse(P.error_body(f"engine failed: {loop.error!r}", "server_error"), status_code=503)
        return Response(status_code=200)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics():
        from harness.serve.metrics import CONTENT_TYPE

        return Response(loop.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", dependencies=[Depends(require_key)], responses=P.error_responses(401))
    async def models():
        max_len = loop.engine.model_config.max_position
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": int(time.time()),
                                            "owned_by": "causalsre", "root": model_name, "max_model_len": max_len}]}

    @app.post("/v1/completions", dependencies=[Depends(require_key)], responses=POST_ERRORS)
    async def completions(body: P.CompletionRequest, request: Request):
        vocab = loop.engine.model_config.vocab_size
        if isinstance(body.prompt, str):
            ids = prompt_ids(body.prompt, vocab)
        elif isinstance(body.prompt[0], str):
            ids = prompt_ids(body.prompt[0], vocab)
        else:
            ids = list(body.prompt)
            if max(ids) >= vocab:
                raise ApiError(400, f"token id {max(ids)} is outside this model's vocabulary, [0, {vocab}) "
                                    f"(send ids below {vocab}, or the prompt as text)", param="prompt")
        return await _serve("completion", body, body.max_tokens, ids, request)

    @app.post("/v1/chat/completions", dependencies=[Depends(require_key)], responses=POST_ERRORS)
    async def chat_completions(body: P.ChatCompletionRequest, request: Request):
        ids = prompt_ids(chat_text([(m.role, m.text()) for m in body.messages]), loop.engine.model_config.vocab_size)
        return await _serve("chat", body, body.requested_max_tokens, ids, request)

    async def _serve(kind: str, body, requested: int | None, ids: list[int], request: Request):
        if body.model is not None and body.model != model_name:
            raise ApiError(404, f"the model '{body.model}' does not exist; this server serves '{model_name}'",
                           param="model", code="model_not_found")
        tenant = request.headers.get("x-tenant") or body.user
        if tenant is not None and len(tenant) > P.MAX_TENANT_CHARS:
            raise ApiError(400, f"X-Tenant is longer than {P.MAX_TENANT_CHARS} characters", param="user")
        max_tokens = _max_tokens(requested, len(ids))
        if body.min_tokens is not None and body.min_tokens > max_tokens:  # vLLM's SamplingParams refuses it too
            raise ApiError(400, f"min_tokens {body.min_tokens} is more than max_tokens {max_tokens} (the request "
                           "would have to stop before its minimum: send min_tokens <= max_tokens)", param="min_tokens")
        if loop.error is not None:
            raise ApiError(503, "the engine has failed; see the server's log", "server_error", code="engine_failure")
        pending = loop.submit(ids, max_tokens, priority=body.priority, tenant=tenant, arrival_ns=loop.now_ns(),
                              attributes={"endpoint": kind, "stream": body.stream})
        # Until the response starts, a watcher notices a client that hangs up (Starlette's streaming response
        # does that itself once it runs), aborts the request and wakes the handler.
        watcher = asyncio.create_task(_watch_disconnect(request, pending))
        finished = False
        try:
            first = await pending.queue.get()
            if first[0] != "accepted":
                finished = True
                _raise_for(first[1], first[2])
            rid = P.new_id(kind)
            if body.stream:
                watcher.cancel()
                opts = body.stream_options or P.StreamOptions()
                finished = True   # from here on the stream's own finally aborts it
                stream = _stream(kind, rid, pending, len(ids), opts)
                # A client gone before the first chunk can leave the generator never started (so its finally
                # never runs); aborting when it is collected covers that. Aborting a finished request is a no-op.
                weakref.finalize(stream, loop.abort, pending.request_id)
                return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
            words = []
            while True:
                message = await pending.queue.get()
                if message[0] == "token":
                    words.append(token_word(message[1]))
                    continue
                finished = True
                if message[1] != "ok":
                    _raise_for(message[1], message[2])
                return P.full_response(kind, rid, model_name, "".join(words), "length",
                                       P.usage(len(ids), len(words)))
        finally:
            watcher.cancel()
            if not finished:
                loop.abort(pending.request_id)   # the client went away (or we were cancelled): free its blocks

    def _max_tokens(requested: int | None, num_prompt: int) -> int:
        limit = settings.serve.max_tokens_limit
        max_position = loop.engine.model_config.max_position
        room = max_position - num_prompt
        if room < 1:
            raise ApiError(400, f"this model's maximum context length is {max_position} tokens; the prompt has "
                           f"{num_prompt} (one per word, plus BOS) (send a prompt of at most {max_position - 2} words)",
                           param="prompt", code="context_length_exceeded")
        if requested is None:
            return min(settings.serve.default_max_tokens, room, limit)
        if requested > limit:
            raise ApiError(400, f"max_tokens must be at most {limit}, got {requested} (send max_tokens of at most "
                           f"{limit}: the server's serve.max_tokens_limit)", param="max_tokens")
        if requested > room:
            raise ApiError(400, f"this model's maximum context length is {max_position} tokens; you asked for "
                           f"{num_prompt + requested} ({num_prompt} in the prompt, {requested} to generate) "
                           f"(send max_tokens of at most {room}, or a shorter prompt)",
                           param="max_tokens", code="context_length_exceeded")
        return requested

    def _raise_for(status: str, reason: str):
        retry = {"Retry-After": str(settings.serve.retry_after_s)}
        if status == "rejected":
            raise ApiError(429, "the server's request queue is full; retry later", "rate_limit_exceeded",
                           code="queue_full", headers=retry)
        if reason == "engine_failure":   # the engine thread died: the server's fault, not the request's
            raise ApiError(500, "the engine has failed; see the server's log", "server_error", code=reason)
        if status in ("error", "invalid"):
            raise ApiError(400, f"the request cannot be served with this engine's settings ({reason})",
                           code=reason if status == "error" else None)
        if status == "timeout":
            raise ApiError(503, f"the request timed out in the engine after "
                           f"{settings.engine.request_timeout_s} s", "server_overloaded", code="timeout",
                           headers=retry)
        if status == "disconnected":   # nobody reads this answer; the code is nginx's "client closed request"
            raise ApiError(499, "client closed the request", code="client_closed")
        if status == "aborted":
            raise ApiError(503, "the request was aborted (the server is shutting down)", "server_error",
                           code="aborted", headers=retry)
        raise ApiError(500, f"the engine failed ({reason})", "server_error", code=reason)

    async def _watch_disconnect(request: Request, pending: Pending) -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(DISCONNECT_POLL_S)
        loop.abort(pending.request_id)
        pending.queue.put_nowait(("done", "disconnected", "client_closed"))

    async def _stream(kind: str, rid: str, pending: Pending, num_prompt: int, opts: P.StreamOptions):
        created, n, finished = int(time.time()), 0, False

        def chunk(**kw) -> bytes:
            return P.sse(P.chunk(kind, rid, model_name, created, **kw))

        token_event = P.TokenEvent(P.chunk(kind, rid, model_name, created, text=""), kind)
        try:
            if kind == "chat":
                yield chunk(role=True, text="")
            while True:
                message = await pending.queue.get()   # Starlette cancels this task when the client disconnects
                if message[0] == "token":
                    n += 1
                    if opts.continuous_usage_stats:
                        yield chunk(text=token_word(message[1]), use=P.usage(num_prompt, n))
                    else:
                        yield token_event.encode(token_word(message[1]))
                    continue
                finished = True
                if message[1] == "ok":
                    yield chunk(text=None if kind == "chat" else "", finish_reason="length")
                    if opts.include_usage:
                        yield chunk(no_choices=True, use=P.usage(num_prompt, n))
                else:
                    try:
                        _raise_for(message[1], message[2])
                    except ApiError as exc:   # headers are sent: vLLM's way is an error event in the stream
                        yield P.sse(P.error_body(exc.message, exc.type, exc.param, exc.code))
                yield b"data: [DONE]\n\n"
                return
        finally:
            if not finished:
                loop.abort(pending.request_id)

    return app
