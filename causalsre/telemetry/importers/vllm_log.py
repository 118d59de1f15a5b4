"""A vLLM server log -> ``metric_samples`` (its stats lines), ``run_settings`` and restart events.

The stats line vLLM writes every 10 s while busy becomes samples under the names the Prometheus importer
stores for the same quantities (``vllm:num_requests_running``, ``vllm:num_requests_waiting``,
``vllm:kv_cache_usage_perc`` or V0's ``vllm:gpu_cache_usage_perc`` as a fraction, V0's
``vllm:avg_*_throughput_toks_per_s``), so docs/importers/vllm-mapping.md applies unchanged; V1's per-interval
``Preemptions: N`` is summed into the counter ``vllm:num_preemptions_total`` (from 0 at each start, as the
process's counter), V0's preemption warning gives that counter's value itself. Each start of the server gives
its settings (:mod:`.vllm_log_settings`); a restart is an operator event. Lines are read by
:mod:`.vllm_log_lines`.

vLLM's timestamps have no year and are the server's local time: the year comes from ``year`` or from the
run the log is attached to (``reference_s``), the offset from ``offset`` (UTC by default).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from causalsre.errors import UserError
from causalsre.telemetry.importers import vllm_log_lines as lines
from causalsre.telemetry.importers.checks import MAX_EPOCH_S, MIN_EPOCH_S
from causalsre.telemetry.importers.files import existing_file, fingerprint, read_bytes
from causalsre.telemetry.importers.mapping import STATE_MAX_INTERVAL_S
from causalsre.telemetry.importers.vllm_bench import utc_offset
from causalsre.telemetry.importers.vllm_log_settings import UNMODELLED, Start, server_config, timeline
from causalsre.telemetry.importers.writer import Batch

KIND = "import-vllm-log"
MAX_LINE = 1 << 20  # characters: a longer line is no vLLM line (a binary blob, a dumped prompt)
PREEMPTIONS_LOGGED_FROM = (0, 32)  # the stats line says "Preemptions: N" when there were some (checked in 0.32)
WAITING = ("Waiting", "Pending")  # V1, V0


def parse(paths: list[str | Path], *, run_id: str | None = None, year: int | None = None,
          reference_s: float | None = None, offset: str | None = None, name: str | None = None) -> Batch:
    """Every file (oldest first, as rotated logs are numbered) as one stream and one batch."""
    files = [existing_file(p) for p in paths]
    zone = utc_offset(offset)
    reader = _Reader(year, reference_s, zone)
    for path in files:
        reader.read(path)
    reader.finish()
    names = ", ".join(p.name for p in files)
    if not reader.any_vllm:
        raise UserError(f"{names}: no line is a vLLM log line (like `INFO 12-03 04:22:44 [loggers.py:123] ...`)",
                        "give the output of `vllm serve` (its stdout and stderr)")
    if not reader.samples:
        starts = f"{len(reader.starts)} start(s) of the server but " if reader.starts else ""
        raise UserError(f"{names} holds {starts}no stats line (`Engine 000: Avg prompt throughput: ...`)",
                        "vLLM writes one every 10 s while it serves requests (not with --disable-log-stats): give "
                        "the log of the time the requests were served")
    samples = pd.DataFrame(reader.samples, columns=["ts_s", "metric", "labels_json", "value", "source"])
    samples = samples.drop_duplicates(subset=["ts_s", "metric", "labels_json"], keep="last").reset_index(drop=True)
    settings, restarts, notes = timeline(reader.starts)
    events = None
    if restarts:
        events = pd.DataFrame([(ts, "restart", what[:200], "deploy", files[0].name) for ts, what in restarts],
                              columns=["ts_s", "key", "value", "kind", "source"])
    notes = reader.notes(attached=run_id is not None) + notes
    config = {"source": [p.name for p in files][:50], "files": len(files), "format": "vllm server log",
              "starts": [{"at": s.where, "version": s.version} for s in reader.starts][:100],
              "stats_lines": reader.stats_lines, "damaged_lines": reader.damaged, "http": reader.http_summary(),
              "errors": reader.errors}
    if server := server_config(reader.starts):
        config["server_config"] = server
        notes += [f"the log says {k}={' -> '.join(v)} (vLLM's default: {UNMODELLED[k]}): the causal graph has no "
                  "node for it, so if the other run's server differs the postmortem can show it only as an "
                  "unexplained change of the queue" for k, v in server.items() if v != [UNMODELLED[k]]]
    if run_id is not None:
        return Batch(run_id=run_id, kind=KIND, name=name or files[0].name, samples=samples, events=events,
                     settings=settings, config=config, attach=True, notes=notes)
    times = [samples["ts_s"].min()] + ([settings["ts_s"].min()] if settings is not None else [])
    return Batch(run_id=f"{KIND}-{fingerprint(files)}", kind=KIND, name=name or files[0].name,
                 t0_s=float(min(times)), config=config, samples=samples, events=events, settings=settings,
                 notes=notes)


class _Reader:
    """Reads lines in order, keeping the clock (year roll-over), the current server start and what was found."""

    def __init__(self, year: int | None, reference_s: float | None, zone):
        self.year, self.reference_s, self.zone = year, reference_s, zone
        self.last: datetime | None = None
        self.starts: list[Start] = []
        self.current: Start | None = None
        self.samples: list[tuple] = []
        self.any_vllm = False
        self.stats_lines = 0
        self.damaged: dict[str, list[str]] = {}  # why -> first places
        self.http: dict[str, int] = {}
        self.errors: list[str] = []
        self.gaps: dict[tuple, list[float]] = {}  # (start, engine) -> stats line times
        self.saw_preemptions = False
        self.increments: list[tuple[float, str, float, str]] = []  # ts, labels, preemptions so far, source

    def read(self, path: Path) -> None:
        data = read_bytes(path)
        if not data.strip():
            raise UserError(f"{path.name} is empty", "give the output of `vllm serve` (its stdout and stderr)")
        text = data.decode("utf-8", errors="replace")  # a log cut mid-character still reads
        for number, raw in enumerate(text.splitlines(), 1):
            where = f"{path.name} line {number}"
            if len(raw) > MAX_LINE:
                self._damaged("longer than 1 MB", where)
                continue
            clean = lines.strip(raw)
            line = lines.timestamped(clean, number)
            if line is None:
                found = lines.access(clean)
                if found is not None:
                    key = f"{found[0]} {found[1].split('?')[0][:80]} {found[2]}"
                    self.http[key] = self.http.get(key, 0) + 1
                continue
            self.any_vllm = True
            ts = self._epoch(line, where)
            if ts is not None:
                self._line(line, ts, where, path.name)

    def _damaged(self, why: str, where: str) -> None:
        places = self.damaged.setdefault(why, [])
        if len(places) < 3:
            places.append(where)
        else:
            places[-1] = f"{places[-1].split(' (')[0]} (and more)"

    def _epoch(self, line: lines.Line, where: str) -> float | None:
        if self.year is None and self.reference_s is None:
            raise UserError(f"{where}: vLLM's timestamps ({line.month:02d}-{line.day:02d} "
                            f"{':'.join(f'{v:02d}' for v in line.clock)}) have no year",
                            "give --year YYYY, or --run RUN to take it from the run the log belongs to")
        if self.last is None:
            self.year = self.year if self.year is not None else self._nearest_year(line)
        year = self.year
        try:
            moment = datetime(year, line.month, line.day, *line.clock, tzinfo=self.zone)
            if self.last is not None and moment < self.last - timedelta(days=180):  # 12-31 -> 01-01: a new year
                self.year = year = year + 1
                moment = datetime(year, line.month, line.day, *line.clock, tzinfo=self.zone)
        except ValueError:
            self._damaged("a date that does not exist (month 13, 25 o'clock...)", where)
            return None
        self.last = moment
        seconds = moment.timestamp()
        if not MIN_EPOCH_S <= seconds < MAX_EPOCH_S:
            raise UserError(f"{where}: the year {year} puts the log outside 2000-2200", "give --year YYYY")
        return seconds

    def _nearest_year(self, line: lines.Line) -> int:
        """The year that puts the log's first line nearest the run's start (a log begun on 12-31 for a run of
        01-01 is last year's)."""
        ref = datetime.fromtimestamp(self.reference_s, tz=self.zone)

        def distance(year: int) -> float:
            try:
                return abs(datetime(year, line.month, line.day, *line.clock, tzinfo=self.zone).timestamp()
                           - self.reference_s)
            except ValueError:  # 02-29 outside a leap year
                return math.inf
        return min((ref.year - 1, ref.year, ref.year + 1), key=distance)

    def _open(self, ts: float, where: str, mark: str) -> Start:
        if self.current is None or mark in self.current.seen or self.current.number == 0:
            self.current = Start(number=len(self.starts) + 1, ts_s=ts, where=where)
            self.starts.append(self.current)
        self.current.seen.add(mark)
        return self.current

    def _line(self, line: lines.Line, ts: float, where: str, source: str) -> None:
        message = line.message
        if line.level in ("ERROR", "CRITICAL") and len(self.errors) < 5:
            self.errors.append(f"{where}: {message[:160]}")
        if (found := lines.stats(message)) is not None:
            self._stats(found, ts, where, source)
            return
        if (args := lines.args_dict(message)) is not None:
            self._open(ts, where, "args").args = args
            return
        version, engine_line = lines.version(message), "with config: " in message
        if version is not None and not engine_line:
            self._open(ts, where, "version").version = version
            return
        if engine_line:
            start = self._open(ts, where, "config")
            start.config = lines.config_pairs(message)
            start.version = start.version or version
            return
        if (total := lines.preempted_total(message)) is not None:  # V0: the process's count itself
            self.samples.append((ts, "vllm:num_preemptions_total", self._labels(None), float(total), f"vllm log {source}"))
            return
        for key, pattern in (("max_num_batched_tokens", r"Chunked prefill is enabled with max_num_batched_tokens=(\d+)"),
                             ("num_gpu_blocks", r"# GPU blocks: (\d+)"),
                             ("num_gpu_blocks", r"num_gpu_blocks is: (\d+)"),
                             ("kv_tokens", r"KV cache size: ([\d,]+) tokens")):
            value = lines.number_after(message, pattern)
            if value is not None and self.current is not None:
                self.current.facts.setdefault(key, value)

    def _labels(self, engine: str | None) -> str:
        labels = {}
        if engine is not None:
            labels["engine"] = engine
        name = self.current.served_name() if self.current is not None else None
        if name:
            labels["model_name"] = name
        return json.dumps(dict(sorted(labels.items())))

    def _stats(self, found: tuple[dict, str | None, list[str]], ts: float, where: str, source: str) -> None:
        parts, engine, _ = found
        waiting = next((parts[k] for k in WAITING if k in parts), None)
        running = parts.get("Running")
        if running is None or waiting is None:
            self._damaged("a stats line without Running and Waiting (cut short?)", where)
            return
        usage = {k: v for k, v in parts.items() if k.endswith("KV cache usage")}
        if (max(running, waiting) > lines.MAX_COUNT or any(not 0 <= v <= 100 for v in usage.values())
                or any(v < 0 for v in parts.values())):
            self._damaged("a stats line with impossible values (negative, KV usage over 100 %)", where)
            return
        self.stats_lines += 1
        v0 = "Pending" in parts or "Swapped" in parts
        labels, origin = self._labels(engine), f"vllm log {source}"
        rows = [("vllm:num_requests_running", running), ("vllm:num_requests_waiting", waiting)]
        if "Swapped" in parts:
            rows.append(("vllm:num_requests_swapped", parts["Swapped"]))
        for key, value in usage.items():
            if v0:  # V0 names the GPU pool and the CPU swap space
                rows.append(("vllm:gpu_cache_usage_perc" if key.startswith("GPU") else "vllm:cpu_cache_usage_perc",
                             value / 100))
            else:  # V1: the engine's one pool, on whatever device ("CPU KV cache usage" on the CPU build)
                rows.append(("vllm:kv_cache_usage_perc", value / 100))
        for key, metric in (("Avg prompt throughput", "vllm:avg_prompt_throughput_toks_per_s"),
                            ("Avg generation throughput", "vllm:avg_generation_throughput_toks_per_s")):
            if key in parts:
                rows.append((metric, parts[key]))
        self.samples.extend((ts, metric, labels, float(value), origin) for metric, value in rows)
        if not v0:
            if self.current is None:  # the log begins after the server started: its process, unnamed
                self.current = Start(number=0, ts_s=ts, where=where)
            start = self.current
            if "Preemptions" in parts:
                self.saw_preemptions = True
            start.preemptions += parts.get("Preemptions", 0.0)
            self.increments.append((ts, labels, start.preemptions, origin))
        self.gaps.setdefault((self.current.number if self.current else 0, engine), []).append(ts)

    def http_summary(self) -> dict[str, int]:
        return dict(sorted(self.http.items(), key=lambda kv: -kv[1])[:20])

    def notes(self, *, attached: bool) -> list[str]:
        notes = []
        gaps = [b - a for times in self.gaps.values() for a, b in zip(times, times[1:])]
        if gaps:
            interval = float(pd.Series(gaps).median())
            if interval > STATE_MAX_INTERVAL_S:
                notes.append(f"the stats lines come every ~{interval:.0f} s (VLLM_LOG_STATS_INTERVAL; more than "
                             f"{STATE_MAX_INTERVAL_S:g} s), and to the second: too coarse to say the engine state at "
                             "one request's arrival, so the postmortem leaves waiting/running requests and KV usage "
                             "unmeasured (as for sparse scrapes); scrape /metrics every 1-5 s for them")
        if not self.starts:
            notes.append("the log holds no start of the server (no `non-default args:` line): its settings are not "
                         "known from it; give the log from the server's start, or record them with `db import events`")
        for why, places in self.damaged.items():
            notes.append(f"skipped lines: {why}: {', '.join(places)}")
        errors = sum(n for key, n in self.http.items() if int(key.rsplit(" ", 1)[1]) >= 400)
        if errors:
            notes.append(f"the access log has {errors} of {sum(self.http.values())} responses with status 400 or "
                         "more (config http); uvicorn logs no time for them, so they are not matched to requests")
        if not attached:
            notes.append("engine state only, no per-request rows: the postmortem needs each request's times to "
                         "count bad events, so import the bench JSON (`db import vllm-bench`) and add this log to "
                         "its run with --run")
        return notes

    def finish(self) -> None:
        """V1's preemption counts as the counter, where the log's vLLM says them."""
        versions = [tuple(int(p) for p in s.version.split(".")[:2] if p.isdigit()) for s in self.starts if s.version]
        if not (self.saw_preemptions or any(len(v) == 2 and v >= PREEMPTIONS_LOGGED_FROM for v in versions)):
            return  # an older V1 logs no preemptions at all: leave the counter unknown, not 0
        for ts, labels, total, origin in self.increments:
            self.samples.append((ts, "vllm:num_preemptions_total", labels, total, origin))
        self.increments = []
