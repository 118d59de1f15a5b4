"""The gateway's FastAPI app: OpenAI-compatible routes that queue by the governor and relay to the upstream.

A request is admitted or rejected (429 with Retry-After, recorded with the reason), waits in the gateway's
queue for one of ``max_concurrency`` seats in the policy's order, then goes to the upstream with ``model``
set to the upstream's name and everything else as the client sent it. A stream is relayed event by event,
bytes unchanged; each event's tokens are timed as they pass. Errors: the upstream's 4xx are passed through
(the client's request is bad), its 429/503 become a 429 (recorded rejected, ``upstream_busy``), anything
else (5xx, unreachable, cut mid-answer) a 502 with OpenAI's error object (or, once a stream has started,
an error event in it, as vLLM does).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import time
import weakref
from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException

from harness.serve import body as body_rules
from harness.serve import protocol as P
from harness.serve.gateway import GatewayQueue, GatewaySettings
from harness.serve.gateway_parse import (OK_FINISH, check_fields, completion_count, event_tokens, int_field,
                                         parse_body, prompt_len, token_limit, upstream_body)
from harness.serve.gateway_telemetry import GatewayTelemetry
from harness.serve.limits import ApiError, BodySizeLimit, http_error_response
from harness.serve.metrics import CONTENT_TYPE, ServeMetrics

def create_gateway_app(settings: GatewaySettings, db_path: str | None = None) -> FastAPI:
    tel = GatewayTelemetry(settings, db_path)
    queue = GatewayQueue(settings, tel.now_ns, tel.action)
    metrics = ServeMetrics(settings.model_name)
    rejected = Counter("causalsre:gateway_rejected", "Requests the gateway rejected, by reason.",
                       ["model_name", "reason"], registry=metrics.registry)
    ids = itertools.count()
    state: dict = {}
    retry = {"Retry-After": str(settings.retry_after_s)}
    upstream = settings.upstream

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        tel.start()
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=max(8, settings.max_concurrency))
        client = httpx.AsyncClient(timeout=httpx.Timeout(settings.upstream_timeout_s, connect=10.0), limits=limits)
        state["client"] = client
        tasks = [asyncio.create_task(queue.heartbeat(queue.governor.tick_ns / 1e9)),
                 asyncio.create_task(tel.scrape_loop(client))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()
            await asyncio.to_thread(tel.stop, queue.final_actions())

    app = FastAPI(title="causalsre gateway", version="1", lifespan=lifespan,
                  description="The budget governor in front of an OpenAI-compatible server (docs/serve.md).")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.state.telemetry, app.state.queue = tel, queue

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return JSONResponse(P.error_body(exc.message, exc.type, exc.param, exc.code), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return http_error_response(exc, request)

    async def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_key.encode()):
            raise ApiError(401, "invalid or missing API key: send 'Authorization: Bearer KEY'",
                           "authentication_error", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    @app.get("/health", response_class=Response)
    async def health():
        return Response(status_code=200)

    @app.get("/metrics", response_class=Response)
    async def metrics_route():
        metrics.observe_step(len(queue.running), len(queue.waiting), 0, 0, 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", dependencies=[Depends(require_key)])
    async def models():
        return {"object": "list", "data": [{"id": settings.model_name, "object": "model", "created": int(time.time()),
                                            "owned_by": "causalsre-gateway", "root": settings.upstream_model}]}

    @app.post("/v1/completions", dependencies=[Depends(require_key)])
    async def completions(request: Request):
        return await _proxy("completion", "/v1/completions", request)

    @app.post("/v1/chat/completions", dependencies=[Depends(require_key)])
    async def chat_completions(request: Request):
        return await _proxy("chat", "/v1/chat/completions", request)

    def finish(t, status: str, reason: str) -> None:
        queue.done(t, status)
        metrics.observe_done(tel.done(t, status, reason), t.arrival_ns)

    async def _proxy(kind: str, path: str, request: Request):
        raw = await request.body()
        problem = body_rules.header_problem(request.headers) if raw.strip() else None  # empty: said so below
        if problem is not None:  # vLLM's rule; the gateway parsed a text/plain body and answered 200
            raise ApiError(400, problem)
        body = parse_body(raw)
        out = upstream_body(dict(body, model=settings.upstream_model))  # before a seat is taken: it may refuse
        model = body.get("model")
        if model is not None and model not in (settings.model_name, settings.upstream_model):
            raise ApiError(404, f"the model '{model}' does not exist; this gateway serves '{settings.model_name}'",
                           param="model", code="model_not_found")
        tenant = request.headers.get("x-tenant") or body.get("user")
        if tenant is not None and (not isinstance(tenant, str) or len(tenant) > P.MAX_TENANT_CHARS):
            raise ApiError(400, f"the tenant (X-Tenant or user) must be a string of at most {P.MAX_TENANT_CHARS} "
                           "characters", param="user")
        num_prompt = prompt_len(kind, body)
        check_fields(body)
        max_tokens = int_field(body, "max_tokens", "max_completion_tokens", default=16, low=1)
        priority = int_field(body, "priority", default=0)
        stream = bool(body.get("stream"))
        limit = token_limit(body, max_tokens)
        rid = next(ids)
        t = queue.ticket(rid, tenant, priority, tel.now_ns(), num_prompt, max_tokens)
        tel.arrived(rid, t.arrival_ns, {"endpoint": kind, "stream": stream, "gateway": True})
        reason = queue.admit(t)
        if reason is not None:
            tel.done(t, "rejected", reason)
            rejected.labels(settings.model_name, reason).inc()
            raise ApiError(429, f"the gateway is shedding this request ({reason}); retry later",
                           "rate_limit_exceeded", code=reason, headers=retry)
        try:
            await t.go   # a seat; cancelled when the client hangs up while it waits
        except asyncio.CancelledError:
            finish(t, "aborted", "client_closed")
            raise
        tel.event(rid, "scheduled", tel.now_ns())
        client: httpx.AsyncClient = state["client"]
        try:
            response = await client.send(client.build_request("POST", upstream + path, content=out,
                                                              headers={"content-type": "application/json"}),
                                         stream=True)
        except httpx.HTTPError as exc:
            finish(t, "error", "upstream_unreachable")
            raise ApiError(502, f"the upstream did not answer ({type(exc).__name__})", "server_error",
                           code="upstream_error") from None
        except asyncio.CancelledError:
            finish(t, "aborted", "client_closed")
            raise
        if response.status_code != 200:
            return await _upstream_error(t, response)
        if stream:
            return _relay(t, response, limit)
        try:
            raw = await response.aread()
            answer = json.loads(raw)
        except (httpx.HTTPError, ValueError):
            finish(t, "error", "upstream_bad_answer")
            raise ApiError(502, "the upstream's answer was cut or not JSON", "server_error", code="upstream_error")
        except asyncio.CancelledError:
            finish(t, "aborted", "client_closed")
            raise
        finally:
            await response.aclose()
        try:
            if not isinstance(answer, dict):
                raise ValueError(f"it is a JSON {type(answer).__name__}, not an object")
            count = completion_count(answer.get("usage"), limit)
        except ValueError as exc:  # a string crashed the metrics (a 500); 10^9 wrote a billion token rows
            finish(t, "error", "upstream_bad_answer")
            raise ApiError(502, f"the upstream's answer is not usable: {exc}", "server_error",
                           code="upstream_error") from None
        now = tel.now_ns()
        # The client sees every token at once: its first token is the answer's arrival (TTFT = latency).
        t.num_output_tokens = count
        t.first_token_ns = t.last_token_ns = now if t.num_output_tokens else None
        tel.tokens(rid, 0, t.num_output_tokens, now)
        metrics.generation_tokens.inc(t.num_output_tokens)
        finish(t, "ok", "length")
        return JSONResponse(answer)

    async def _upstream_error(t, response: httpx.Response):
        try:
            text = (await response.aread()).decode(errors="replace")
        except httpx.HTTPError:
            text = ""
        finally:
            await response.aclose()
        code = response.status_code
        if code in (429, 503):
            finish(t, "rejected", "upstream_busy")
            rejected.labels(settings.model_name, "upstream_busy").inc()
            raise ApiError(429, f"the upstream is busy (HTTP {code}); retry later", "rate_limit_exceeded",
                           code="upstream_busy", headers={"Retry-After": response.headers.get("retry-after",
                                                                                               retry["Retry-After"])})
        if 400 <= code < 500:
            finish(t, "error", f"upstream_http_{code}")
            try:
                return JSONResponse(json.loads(text), status_code=code)
            except ValueError:
                raise ApiError(code, text[:500] or f"the upstream answered HTTP {code}") from None
        finish(t, "error", f"upstream_http_{code}")
        raise ApiError(502, f"the upstream failed (HTTP {code}): {text[:200]}", "server_error", code="upstream_error")

    def _relay(t, response: httpx.Response, limit: int) -> StreamingResponse:
        done = [False]

        def close(status: str, reason: str) -> None:
            if not done[0]:
                done[0] = True
                finish(t, status, reason)

        async def events():
            status, reason, seen, buf = "error", "stream ended early", 0, b""
            try:
                async for data in response.aiter_raw():
                    buf += data
                    while (i := buf.find(b"\n\n")) >= 0:
                        event, buf = buf[:i + 2], buf[i + 2:]
                        count, fin = event_tokens(event, seen, limit)
                        if count:
                            now = tel.now_ns()
                            t.first_token_ns = t.first_token_ns or now
                            t.last_token_ns = now
                            tel.tokens(t.request_id, seen, count, now)
                            metrics.generation_tokens.inc(count)
                            seen += count
                            t.num_output_tokens = seen
                        if fin:
                            reason = fin
                        yield event   # unchanged bytes, one whole SSE event at a time
                if buf:
                    yield buf
                status = "ok" if reason in OK_FINISH else "error"
            except httpx.HTTPError as exc:
                reason = "upstream_cut"
                yield (f"data: {json.dumps(P.error_body(f'the upstream stream broke ({type(exc).__name__})', 'server_error', None, 'upstream_error'))}\n\n"
                       "data: [DONE]\n\n").encode()
            except BaseException:   # the client hung up (cancelled): closing our side aborts the upstream's
                status, reason = "aborted", "client_closed"
                raise
            finally:
                close(status, reason)
                with anyio.CancelScope(shield=True):
                    await response.aclose()

        stream = events()
        # A client gone before the first event can leave the generator never started (its finally never
        # runs): free the seat when it is collected. close() is idempotent.
        weakref.finalize(stream, close, "aborted", "client_closed")
        headers = {"Cache-Control": "no-cache"}
        return StreamingResponse(stream, media_type=response.headers.get("content-type", "text/event-stream"),
                                 headers=headers)

    return app
