"""OpenTelemetry traces as OTLP/JSON -> ``requests``: one request per LLM span.

Read: an ``ExportTraceServiceRequest`` in the OTLP/JSON mapping (``resourceSpans`` / ``scopeSpans`` /
``spans``; what the Collector's file exporter writes, one request per line, is read too). A span is a model
request when it carries ``gen_ai.*`` usage or latency attributes; other spans (HTTP, database) are counted
in the run's config and skipped.

vLLM's ``llm_request`` span starts at the request's arrival and carries ``gen_ai.latency.time_in_queue``,
``gen_ai.latency.time_to_first_token`` and ``gen_ai.latency.e2e`` (seconds) and
``gen_ai.usage.prompt_tokens`` / ``completion_tokens``. The current GenAI semantic conventions name the
tokens ``gen_ai.usage.input_tokens`` / ``output_tokens`` and have no latency attributes: then the span's
own duration is the E2E latency and TTFT is unknown. A span with status ERROR is a failed request.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from causalsre.errors import UserError
from causalsre.safeio import brief
from causalsre.telemetry.importers.checks import MAX_LATENCY_S, MAX_TOKENS, NS, epoch_seconds, number
from causalsre.telemetry.importers.files import existing_file, fingerprint, read_json
from causalsre.telemetry.importers.frames import requests_frame
from causalsre.telemetry.importers.writer import Batch

KIND = "import-otel"
WHAT = "OTLP/JSON traces (an ExportTraceServiceRequest with resourceSpans)"
PROMPT = ("gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens")
OUTPUT = ("gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens")
LATENCY = ("gen_ai.latency.time_in_queue", "gen_ai.latency.time_to_first_token", "gen_ai.latency.e2e")
STATUS_ERROR = 2  # Status.code: 0 unset, 1 ok, 2 error


def parse(paths: list[str | Path], *, name: str | None = None) -> Batch:
    """All files' LLM spans as one new run."""
    files = [existing_file(p) for p in paths]
    spans, skipped = [], 0
    for path in files:
        doc = read_json(path, WHAT)
        for one in doc if isinstance(doc, list) else [doc]:
            found, other = _spans(one, path)
            spans.extend(found)
            skipped += other
    _refuse_repeats(spans)
    if not spans:
        raise UserError(f"{', '.join(p.name for p in files)} hold no LLM request spans (no gen_ai.* attributes)",
                        "export the spans of the model server (vLLM --otlp-traces-endpoint) or GenAI client spans")
    spans.sort(key=lambda s: s["start_ns"])
    base_ns = spans[0]["start_ns"]
    arrival = np.array([(s["start_ns"] - base_ns) / NS for s in spans])
    span_s = np.array([(s["end_ns"] - s["start_ns"]) / NS for s in spans])
    queue, ttft, e2e = (np.array([np.nan if s[k] is None else s[k] for s in spans]) for k in LATENCY)
    e2e = np.where(np.isnan(e2e), span_s, e2e)
    failed = np.array([s["failed"] for s in spans])
    frame, t0 = requests_frame(
        {"arrival": arrival, "first_scheduled": arrival + queue, "first_token": np.where(failed, np.nan, arrival + ttft),
         "finish": arrival + e2e},
        base_s=epoch_seconds(base_ns / NS, f"{files[0].name}: span start"),
        prompt_tokens=[s["prompt"] for s in spans], output_tokens=[s["output"] for s in spans],
        status=np.where(failed, "error", "ok"), finish_reason=[s["reason"] for s in spans],
        attributes=[json.dumps(s["attributes"]) if s["attributes"] else None for s in spans],
        where=files[0].name)
    # Without a last-token time the view's TPOT is (e2e - ttft) / (n - 1), vLLM's definition.
    frame["last_token_ns"] = frame["finish_ns"].where(frame["first_token_ns"].notna())
    config = {"source": [p.name for p in files], "spans": len(spans), "skipped_spans": skipped}
    return Batch(run_id=f"{KIND}-{fingerprint(files)}", kind=KIND, name=name or files[0].name, t0_s=t0,
                 config=config, requests=frame)


def _refuse_repeats(spans: list[dict]) -> None:
    """A span (trace id, span id) that appears twice, in one file or across the files given: imported twice it
    counted one request as two (a Collector file written twice, or the same export given in two files)."""
    seen: dict[tuple, str] = {}
    for span in spans:
        key = span.pop("key")
        if key is None:
            continue
        if key in seen:
            raise UserError(f"{span['where']}: span {key[1][:32]} of trace {key[0][:32]} appears twice (first in "
                            f"{seen[key]})", "give each exported span once: drop the repeated copy or file")
        seen[key] = span["where"].split(":")[0]


def _spans(doc: object, path: Path) -> tuple[list[dict], int]:
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans"), list):
        raise UserError(f"{path.name} is not OTLP/JSON traces (no resourceSpans list)", f"give {WHAT}")
    found, skipped = [], 0
    for resource in doc["resourceSpans"]:
        if not isinstance(resource, dict):
            raise UserError(f"{path.name}: a resourceSpans entry is not an object", f"give {WHAT}")
        service = _attributes((resource.get("resource") or {}).get("attributes"), path).get("service.name")
        for scope in resource.get("scopeSpans") or resource.get("instrumentationLibrarySpans") or []:
            for span in (scope.get("spans") or []) if isinstance(scope, dict) else []:
                one = _span(span, path, service)
                if one is None:
                    skipped += 1
                else:
                    found.append(one)
    return found, skipped


def _span(span: object, path: Path, service: object) -> dict | None:
    if not isinstance(span, dict):
        raise UserError(f"{path.name}: a span is not an object", f"give {WHAT}")
    where = f"{path.name}: span {str(span.get('spanId', '?'))[:32]}"
    attrs = _attributes(span.get("attributes"), path)
    if not any(k in attrs for k in PROMPT + OUTPUT + LATENCY):
        return None
    start, end = _nanos(span.get("startTimeUnixNano"), where, "start"), _nanos(span.get("endTimeUnixNano"), where, "end")
    if end < start:
        raise UserError(f"{where}: ends before it starts", "give unmodified traces")
    status = span.get("status") or {}
    code = status.get("code", 0) if isinstance(status, dict) else 0
    failed = code in (STATUS_ERROR, "STATUS_CODE_ERROR")
    reasons = attrs.get("gen_ai.response.finish_reasons")
    reason = attrs.get("error.type") if failed else (reasons[0] if isinstance(reasons, list) and reasons else reasons)
    model = attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
    extra = {k: v for k, v in (("model", model), ("service", service), ("span", span.get("name"))) if v is not None}
    trace, span_id = span.get("traceId"), span.get("spanId")
    key = (str(trace), str(span_id)) if trace and span_id else None
    return {
        "key": key, "where": path.name,
        "start_ns": start, "end_ns": end, "failed": failed,
        "reason": str(reason)[:200] if reason else ("error" if failed else "stop"),
        "prompt": _first(attrs, PROMPT, where, MAX_TOKENS), "output": _first(attrs, OUTPUT, where, MAX_TOKENS),
        **{k: _first(attrs, (k,), where, MAX_LATENCY_S) for k in LATENCY},
        "attributes": {k: str(v)[:200] for k, v in extra.items()},
    }


def _first(attrs: dict, keys: tuple[str, ...], where: str, maximum: float) -> float | None:
    for key in keys:
        if key in attrs:
            return number(attrs[key], f"{where}: {key}", maximum=maximum, allow_none=True)
    return None


def _nanos(value: object, where: str, what: str) -> int:
    try:
        nanos = int(value)  # OTLP/JSON writes 64-bit integers as strings
    except (TypeError, ValueError):
        raise UserError(f"{where}: {what} time {value!r} is not integer nanoseconds", "give unmodified traces") from None
    epoch_seconds(nanos / NS, f"{where}: {what} time")
    return nanos


def _attributes(items: object, path: Path) -> dict:
    """OTLP ``[{key, value: AnyValue}]`` -> plain dict."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise UserError(f"{path.name}: attributes are not a list of key/value objects", f"give {WHAT}")
    out = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            value = _value(item.get("value"), path)
            if item["key"] in out and out[item["key"]] != value:  # which one is the count? refuse, never pick
                raise UserError(f"{path.name}: attribute {item['key'][:80]!r} is given twice with different values "
                                f"({brief(out[item['key']])} and {brief(value)})", "give each attribute once")
            out[item["key"]] = value
    return out


def _value(value: object, path: Path) -> object:
    if not isinstance(value, dict) or not value:
        return None
    kind, raw = next(iter(value.items()))
    if kind == "intValue":
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise UserError(f"{path.name}: intValue {raw!r} is not an integer", f"give {WHAT}") from None
    if kind == "doubleValue":
        if isinstance(raw, str):  # NaN and Infinity are written as strings in the JSON mapping
            try:
                return float(raw)
            except ValueError:
                raise UserError(f"{path.name}: doubleValue {raw!r} is not a number", f"give {WHAT}") from None
        return raw
    if kind == "arrayValue":
        return [_value(v, path) for v in (raw or {}).get("values", [])] if isinstance(raw, dict) else []
    return raw  # stringValue, boolValue, bytesValue, kvlistValue: kept as given
