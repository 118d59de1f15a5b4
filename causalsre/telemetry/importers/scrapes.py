"""Text exposition (a ``/metrics`` body) -> sample rows, with the checks a damaged or odd scrape needs.

Both text formats vLLM serves are read: Prometheus text 0.0.4 (what ``curl /metrics`` gets; sample
timestamps in milliseconds) and OpenMetrics 1.0 (what Prometheus asks for; a ``# EOF`` line ends it,
timestamps in seconds, exemplars after ``#``), each with prometheus_client's own parser for that format.
A file may hold one scrape or a series of them concatenated: a ``# scrape_time <time>`` line starts each
scrape (a single scrape may carry it last instead), and each OpenMetrics ``# EOF`` ends one. Refused, each in one line naming the scrape: a last line
with no newline (the spec requires one: the file was cut), a series twice in one scrape (two scrapes
concatenated without a time for each, or a broken exporter), a histogram series with buckets but no
``_count``, a negative counter, a scrape with no time.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from causalsre.errors import UserError
from causalsre.telemetry.importers.checks import epoch_seconds, parse_time
from causalsre.times import parse_instant

_SCRAPE_COMMENT = re.compile(r"^#\s*scrape_time[:=\s]\s*(\S+)\s*$")
_EOF = re.compile(r"^#\s*EOF\s*$")
_NAME_EPOCH = re.compile(r"(?<!\d)(\d{10}(?:\.\d+)?)(?!\d)")
_NAME_STAMP = re.compile(r"(?<!\d)(\d{8}T\d{6}Z?)(?!\d)")
MONOTONE_TYPES = ("counter", "histogram", "summary", "gaugehistogram")
_COLON_SAMPLE = re.compile(r"^[^#\s{]*:", re.MULTILINE)
_DESCRIPTOR = re.compile(r"^(#\s+(?:HELP|TYPE|UNIT)\s+)(\S+)", re.MULTILINE)


@dataclass
class Scrape:
    text: str
    time_text: str | None  # the `# scrape_time` of this scrape, if it had one
    openmetrics: bool
    where: str  # "m.prom" or "m.prom scrape 3"


def split(text: str, name: str) -> list[Scrape]:
    """The scrapes of one file: split before each ``# scrape_time`` line and after each ``# EOF``."""
    last = text.rsplit("\n", 1)[-1]
    if _EOF.match(last.strip()):
        text += "\n"  # "# EOF" is a whole line even without its newline: nothing after it was lost
    if not text.endswith("\n"):
        raise UserError(f"{name} ends mid-line ({last[-60:]!r} has no newline): the scrape was cut short",
                        "scrape again, or delete the partial last line")
    chunks: list[list[str]] = [[]]
    times: list[str | None] = [None]
    eof: list[bool] = [False]
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        marker = _SCRAPE_COMMENT.match(stripped)
        # A time marker opens a new scrape unless the current one has no samples yet (a header comment).
        if marker and (times[-1] is not None or eof[-1] or _has_samples(chunks[-1])):
            chunks.append([])
            times.append(None)
            eof.append(False)
        elif not marker and eof[-1] and stripped:
            chunks.append([])
            times.append(None)
            eof.append(False)
        if marker:
            times[-1] = marker.group(1)
            continue
        chunks[-1].append(line)
        if _EOF.match(stripped):
            eof[-1] = True
    if len(chunks) > 1 and times[-1] is not None and not _has_samples(chunks[-1]) and times[-2] is None:
        times[-2] = times[-1]  # `curl ... > f; echo "# scrape_time $(date +%s)" >> f`: the time came last
    scrapes = [(c, t, e) for c, t, e in zip(chunks, times, eof) if _has_samples(c)]
    _one_time_convention([t for _, t, _ in scrapes], name)
    many = len(scrapes) > 1
    return [Scrape("".join(c), t, e, f"{name} scrape {i + 1}" if many else name)
            for i, (c, t, e) in enumerate(scrapes)]


def _one_time_convention(times: list[str | None], name: str) -> None:
    """Refuse `# scrape_time` lines that mix ISO times with and without an offset (the importers' one rule,
    :func:`causalsre.times.mixed_offsets`); epoch seconds are absolute and mix with either."""
    from causalsre.times import MIXED_FIX, mixed_offsets

    def iso(text: str | None) -> str | None:
        try:
            float(text or "")
        except ValueError:
            return text
        return None

    texts = [iso(t) for t in times]
    mixed = mixed_offsets(texts)
    if mixed is not None:
        aware, naive = mixed
        raise UserError(f"{name} mixes # scrape_time values with a UTC offset (scrape {aware + 1}: {texts[aware]!r}) "
                        f"and without one (scrape {naive + 1}: {texts[naive]!r})", MIXED_FIX)


def _has_samples(lines: list[str]) -> bool:
    return any(line.strip() and not line.lstrip().startswith("#") for line in lines)


def _at_time(text: str) -> float:
    """--at as epoch seconds. When it does not parse, the CLI window options' words for why (midnight as
    T24:00 gets the next day's 00:00 to write, a month of 13 the fields to check), not the generic "cannot
    parse"; pandas reads more forms than they do, so it is asked first."""
    try:
        return parse_time(text, "--at")
    except UserError as generic:
        if "cannot parse" not in generic.problem:  # it parsed, as epoch seconds out of range, say: that is why
            raise
        try:
            parse_instant(text, what="--at")
        except UserError as specific:
            if specific.problem.endswith("is not an ISO 8601 time"):  # no reason found: epoch seconds work too
                raise generic from None
            raise specific from None
        raise generic from None


def file_time(path: Path, at: str | None) -> float | None:
    """The time a single-scrape file gives outside its text: --at, else epoch seconds or a stamp in its name."""
    if at is not None:
        return _at_time(at)
    epoch = _NAME_EPOCH.search(path.name)
    if epoch:
        return epoch_seconds(float(epoch.group(1)), f"{path.name}: time in the file name")
    stamp = _NAME_STAMP.search(path.name)
    if stamp:
        return parse_time(stamp.group(1), f"{path.name}: time in the file name")
    return None


def rows(scrape: Scrape, scraped_at: float | None, source: str) -> tuple[list[tuple], int]:
    """(rows ts_s, metric, labels_json, value, source; samples skipped as NaN or infinite)."""
    if scrape.time_text is not None:
        scraped_at = parse_time(scrape.time_text, f"{scrape.where}: # scrape_time")
    families = _families(scrape)
    found, skipped, seen = [], 0, {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # a creation timestamp, not a measurement
            value = float(sample.value)
            if not math.isfinite(value):
                skipped += 1
                continue
            if value < 0 and family.type in MONOTONE_TYPES:
                raise UserError(f"{scrape.where}: {sample.name} is {value} but a {family.type} cannot be negative",
                                "give an unmodified scrape")
            ts = scraped_at
            if sample.timestamp is not None:  # an explicit sample timestamp wins over the scrape time
                ts = epoch_seconds(float(sample.timestamp), f"{scrape.where}: timestamp of {sample.name}")
            if ts is None:
                raise UserError(f"{scrape.where}: no scrape time", "add `# scrape_time 2026-01-01T00:00:00Z` (or "
                                "epoch seconds) before each scrape, put epoch seconds in the file name, or pass --at")
            labels = json.dumps(dict(sorted(sample.labels.items())))
            key = (ts, sample.name, labels)
            if key in seen:
                raise UserError(f"{scrape.where}: series {sample.name}{labels} appears twice (values {seen[key]:g} "
                                f"and {value:g})", "give one scrape per `# scrape_time` line: two scrapes "
                                "concatenated need a `# scrape_time` line before each")
            seen[key] = value
            found.append((ts, sample.name, labels, value, source))
        if family.type == "histogram":
            _check_histogram(family, scrape.where)
    return found, skipped


def _families(scrape: Scrape) -> list:
    text = scrape.text
    if scrape.openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families

        if not _COLON_SAMPLE.search(text):
            # prometheus_client's OpenMetrics exposition (an exporter built on it; vLLM 0.32 itself answered
            # an OpenMetrics Accept header with plain text) escapes ':' to '_' in sample names but not in
            # # HELP/# TYPE: its own parser then refuses the body ("Clashing name"). Escape the
            # descriptors the same way so they match their samples.
            text = _DESCRIPTOR.sub(lambda m: m.group(1) + m.group(2).replace(":", "_"), text)
    else:
        from prometheus_client.parser import text_string_to_metric_families
    try:
        return list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = "an OpenMetrics" if scrape.openmetrics else "a Prometheus text"
        raise UserError(f"{scrape.where} is not {kind} scrape ({first[:120]})",
                        "give the body of a /metrics response (text exposition format)") from None


def _check_histogram(family, where: str) -> None:
    """Every bucketed series of a histogram has its ``_count`` (the total the buckets are read against)."""
    def series(sample) -> str:
        return json.dumps({k: v for k, v in sorted(sample.labels.items()) if k != "le"})

    bucketed = {series(s) for s in family.samples if s.name.endswith("_bucket")}
    counted = {series(s) for s in family.samples if s.name.endswith("_count")}
    missing = sorted(bucketed - counted)
    if missing:
        raise UserError(f"{where}: histogram {family.name}{missing[0]} has buckets but no {family.name}_count",
                        "give an unmodified scrape (a relabelling rule or a filter may have dropped _count)")


def counter_resets(samples) -> int:
    """How many times a counter series went down between scrapes: a restart (the join reads it as one)."""
    counters = samples[samples["metric"].str.endswith("_total")].sort_values("ts_s")
    drops = counters.groupby(["metric", "labels_json"])["value"].diff() < 0
    return int(drops.sum())
