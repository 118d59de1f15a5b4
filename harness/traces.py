"""Azure LLM inference trace replay (``TIMESTAMP, ContextTokens, GeneratedTokens``).

Real traces ask for thousands of tokens and arrive at rates a small CPU model cannot serve, so replay
rescales time (``time_scale`` or a target mean ``rate``) and lengths (``length_scale`` then truncation).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from causalsre.errors import UserError
from causalsre.safeio import REQUEST_COLUMNS, check_table, table_text
from harness.config import TraceSpec

TRACE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")


@dataclass(frozen=True, slots=True)
class TraceRequests:
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


def read_trace(path: str | Path) -> pd.DataFrame:
    """The trace as (offset_s, prompt, output), sorted by time; UserError if it does not parse."""
    path = Path(path)
    # A folder or FIFO says what it is; a line over 8 MiB or thousands of columns are refused before pandas.
    check_table(path, what="trace file", max_columns=REQUEST_COLUMNS)
    fix = f"an Azure LLM trace has the header {','.join(TRACE_COLUMNS)}"
    try:
        frame = pd.read_csv(io.StringIO(table_text(path, what="trace file")))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"trace file {path} does not parse ({str(exc).splitlines()[0]})", fix) from None
    missing = [c for c in TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(f"trace file {path} lacks columns {missing}", fix)
    stamps = pd.to_datetime(frame["TIMESTAMP"], errors="coerce", format="mixed")
    prompt = pd.to_numeric(frame["ContextTokens"], errors="coerce")
    output = pd.to_numeric(frame["GeneratedTokens"], errors="coerce")
    bad = stamps.isna() | prompt.isna() | output.isna() | (prompt < 0) | (output < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # +1 header, +1 one-based
        raise UserError(f"trace file {path} line {row} does not parse", fix)
    if len(frame) == 0:
        raise UserError(f"trace file {path} has no requests", fix)
    order = np.argsort(stamps.to_numpy(), kind="stable")
    offsets = (stamps - stamps.min()).dt.total_seconds().to_numpy()[order]
    return pd.DataFrame({"offset_s": offsets, "prompt": prompt.to_numpy()[order].astype(np.int64),
                         "output": output.to_numpy()[order].astype(np.int64)})


def trace_requests(spec: TraceSpec, duration_s: float) -> TraceRequests:
    """The requests of the trace that fall within ``duration_s`` after rescaling."""
    frame = read_trace(spec.path)
    offsets = frame["offset_s"].to_numpy()
    keep = offsets >= spec.start_offset_s
    offsets, prompt, output = offsets[keep] - spec.start_offset_s, frame["prompt"][keep], frame["output"][keep]
    if len(offsets) == 0:
        raise UserError(f"trace {spec.path} has no requests after start_offset_s", "lower start_offset_s")
    scale = spec.time_scale
    if spec.rate is not None:
        wanted = int(round(spec.rate * duration_s))
        if 0 < wanted < len(offsets) and offsets[wanted] > 0:
            scale = duration_s / float(offsets[wanted])  # exactly `wanted` requests fall inside the run
        else:  # the trace is too short for that: its mean rate over its whole span becomes spec.rate
            scale = (len(offsets) / max(float(offsets[-1]), 1e-9)) / spec.rate
    arrival = offsets * scale
    within = arrival < duration_s
    prompt = np.clip(np.rint(prompt.to_numpy()[within] * spec.length_scale), 1, spec.max_prompt_tokens)
    output = np.clip(np.rint(output.to_numpy()[within] * spec.length_scale), 1, spec.max_output_tokens)
    return TraceRequests(arrival[within], prompt.astype(np.int64), output.astype(np.int64))
