"""Scraping a server's Prometheus ``/metrics`` into ``metric_samples`` (and operator changes into
``operator_events``) while the harness drives it.

Samples are stored as exposed: one row per series and scrape, histogram buckets with ``le`` in the labels,
counters under their ``_total`` name; non-finite values are skipped (the column holds finite numbers). The
buffer appends in one transaction per flush from the caller's thread, on a cursor of its own, so it never
shares a DuckDB connection with the telemetry writer's flush thread.
"""

from __future__ import annotations

import json
import math
import re
import threading

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+(-?\d+))?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _labels(text: str) -> dict[str, str]:
    inner = text[1:-1]
    labels, pos = {}, 0
    while pos < len(inner):
        match = _LABEL.match(inner, pos)
        if match is None:
            raise ValueError(f"bad label set {text!r}")
        labels[match.group(1)] = re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m.group(0)], match.group(2))
        pos = match.end()
    return labels


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(metric, labels, value) for each finite sample of a Prometheus text exposition."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"not a Prometheus sample line: {line[:80]!r}")
        name, label_text, raw = match.group(1), match.group(2), match.group(3)
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"bad sample value {raw!r} for {name}") from None
        if math.isfinite(value):
            samples.append((name, _labels(label_text) if label_text else {}, value))
    return samples


SAMPLE_COLUMNS = [("run_id", "string"), ("ts_ns", "int64"), ("metric", "string"), ("labels_json", "string"),
                  ("value", "float64"), ("source", "string")]
EVENT_COLUMNS = [("run_id", "string"), ("ts_ns", "int64"), ("key", "string"), ("value", "string"),
                 ("kind", "string"), ("source", "string")]


def _table(rows: list[tuple], columns: list[tuple[str, str]]):
    import pyarrow as pa

    arrays = [pa.array(list(col), type=getattr(pa, typ)()) for col, (_, typ) in zip(zip(*rows), columns)]
    return pa.Table.from_arrays(arrays, names=[name for name, _ in columns])


class MetricBuffer:
    """Buffers metric samples and operator events of one run; ``flush()`` appends them in one transaction."""

    def __init__(self, con, run_id: str):
        self.con = con.cursor()  # our own cursor: the telemetry writer flushes from its thread on another
        self.run_id = run_id
        self._samples: list[tuple] = []
        self._events: list[tuple] = []
        self._lock = threading.Lock()
        self.num_samples = 0
        self.num_scrapes = 0
        self.num_failed_scrapes = 0

    def add_scrape(self, ts_ns: int, text: str, source: str) -> int:
        rows = [(self.run_id, ts_ns, name, json.dumps(labels, sort_keys=True), value, source)
                for name, labels, value in parse_exposition(text)]
        with self._lock:
            self._samples.extend(rows)
        self.num_scrapes += 1
        return len(rows)

    def add_operator_event(self, ts_ns: int, key: str, value: str, kind: str = "config") -> None:
        with self._lock:
            self._events.append((self.run_id, ts_ns, key, value, kind, "harness"))

    def flush(self) -> int:
        with self._lock:
            samples, self._samples = self._samples, []
            events, self._events = self._events, []
        if not samples and not events:
            return 0
        self.con.execute("BEGIN TRANSACTION")
        try:
            # Arrow batches appended by position (hundreds of rows a scrape; executemany is row by row).
            if samples:
                self.con.from_arrow(_table(samples, SAMPLE_COLUMNS)).insert_into("metric_samples")
            if events:
                self.con.from_arrow(_table(events, EVENT_COLUMNS)).insert_into("operator_events")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.num_samples += len(samples)
        return len(samples) + len(events)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.con.close()
