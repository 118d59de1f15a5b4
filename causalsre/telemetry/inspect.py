"""Read-only summaries and invariant checks of a telemetry database (`db info`, `db check`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from causalsre.telemetry.schema import REQUIRED_TABLES, SCHEMA_VERSION, missing_objects, schema_damage, schema_version
from causalsre.telemetry.schema import first_row


def database_info(con: duckdb.DuckDBPyConnection) -> dict:
    """Schema version, counts, time span and one line per run."""
    totals = first_row(con.execute(
        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM requests), "
        "(SELECT count(*) FROM tokens), (SELECT count(*) FROM steps), (SELECT count(*) FROM faults)"
    ))
    span = first_row(con.execute("SELECT min(arrival_ts), max(arrival_ts) FROM request_metrics"))
    runs = con.execute(
        """
        -- A reader only gets here when no other process holds the file for writing (DuckDB locks it), so a
        -- run still marked running has lost its writer: it is incomplete.
        SELECT ru.run_id, ru.kind, ru.name,
               CASE WHEN ru.status = 'running' THEN 'incomplete' ELSE ru.status END AS status,
               ru.started_at, ru.seed,
               count(r.request_id) AS requests,
               count(r.request_id) FILTER (WHERE r.status <> 'ok') AS failed
        FROM runs ru LEFT JOIN requests r USING (run_id)
        GROUP BY ALL ORDER BY ru.started_at, ru.run_id
        """
    ).fetchall()
    return {
        "schema_version": schema_version(con),
        "runs": totals[0],
        "requests": totals[1],
        "tokens": totals[2],
        "steps": totals[3],
        "faults": totals[4],
        "first_arrival": span[0].isoformat() if span[0] else None,
        "last_arrival": span[1].isoformat() if span[1] else None,
        "run_list": [
            {"run_id": r[0], "kind": r[1], "name": r[2], "status": r[3],
             "started_at": r[4].isoformat() if r[4] else None, "seed": r[5], "requests": r[6], "failed": r[7]}
            for r in runs
        ],
    }


@dataclass
class CheckResult:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks_run: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks_run": self.checks_run, "problems": self.problems, "warnings": self.warnings}


# (description, SQL counting violating rows). Each is an invariant every writer must keep.
INVARIANTS: tuple[tuple[str, str], ...] = (
    ("requests whose first token precedes their arrival",
     "SELECT count(*) FROM requests WHERE first_token_ns < COALESCE(scheduled_arrival_ns, enqueue_ns)"),
    ("requests whose first scheduling precedes their enqueue",
     "SELECT count(*) FROM requests WHERE first_scheduled_ns < enqueue_ns"),
    ("requests whose last token precedes their first token",
     "SELECT count(*) FROM requests WHERE last_token_ns < first_token_ns"),
    ("requests that finish before their first token",
     "SELECT count(*) FROM requests WHERE finish_ns < first_token_ns"),
    ("successful requests without a first token although they emitted tokens",
     "SELECT count(*) FROM requests WHERE status = 'ok' AND output_tokens > 0 AND first_token_ns IS NULL"),
    ("requests with negative token counts",
     "SELECT count(*) FROM requests WHERE prompt_tokens < 0 OR output_tokens < 0"),
    ("requests whose run is missing from runs",
     "SELECT count(*) FROM requests r ANTI JOIN runs USING (run_id)"),
    ("steps that end before they start", "SELECT count(*) FROM steps WHERE end_ns < start_ns"),
    ("steps using more KV blocks than exist",
     "SELECT count(*) FROM steps WHERE num_kv_blocks_used > num_kv_blocks_total"),
    ("tokens whose request is missing from requests",
     "SELECT count(*) FROM tokens t ANTI JOIN requests r ON t.run_id = r.run_id AND t.request_id = r.request_id"),
    ("requests whose token rows disagree with output_tokens",
     """SELECT count(*) FROM (SELECT run_id, request_id, count(*) AS n FROM tokens GROUP BY ALL) t
        JOIN requests r USING (run_id, request_id) WHERE t.n <> r.output_tokens"""),
    ("overlapping phases within a run",
     """SELECT count(*) FROM phases a JOIN phases b ON a.run_id = b.run_id AND a.name < b.name
        AND a.start_ns < b.end_ns AND b.start_ns < a.end_ns"""),
    ("phases that end before they start", "SELECT count(*) FROM phases WHERE end_ns <= start_ns"),
    ("faults that end before they start", "SELECT count(*) FROM faults WHERE end_ns < start_ns"),
    # The documented time range (causalsre.telemetry.columns): a time outside it is a wrapped-around or
    # unit-mistaken value that analysis would silently drop from its windows.
    ("runs whose start or finish time is outside 1970..2200",
     """SELECT count(*) FROM runs WHERE started_at < TIMESTAMP '1970-01-01' OR started_at >= TIMESTAMP '2200-01-01'
        OR finished_at < TIMESTAMP '1970-01-01' OR finished_at >= TIMESTAMP '2200-01-01'"""),
    ("requests with a time outside 1970..2200",
     """SELECT count(*) FROM requests r JOIN runs ru USING (run_id)
        WHERE epoch_us(ru.started_at)::HUGEINT * 1000 + least(r.scheduled_arrival_ns, r.enqueue_ns,
              r.first_scheduled_ns, r.first_token_ns, r.last_token_ns, r.finish_ns) < 0
           OR epoch_us(ru.started_at)::HUGEINT * 1000 + greatest(r.scheduled_arrival_ns, r.enqueue_ns,
              r.first_scheduled_ns, r.first_token_ns, r.last_token_ns, r.finish_ns)
              >= epoch_us(TIMESTAMP '2200-01-01')::HUGEINT * 1000"""),
)


def check_database(con: duckdb.DuckDBPyConnection) -> CheckResult:
    """Schema version, required tables and views, and the invariants above."""
    result = CheckResult()
    version = schema_version(con)
    result.checks_run += 1
    if version != SCHEMA_VERSION:
        result.problems.append(f"schema version is {version}, expected {SCHEMA_VERSION}")
    result.checks_run += 1
    if version == SCHEMA_VERSION:  # also columns re-created with another type, which imports would accept
        result.problems.extend(schema_damage(con))
    else:
        result.problems.extend(f"missing table or view {name}" for name in missing_objects(con))
    if result.problems:
        return result
    for description, sql in INVARIANTS:
        result.checks_run += 1
        count = first_row(con.execute(sql))[0]
        if count:
            result.problems.append(f"{count} {description}")
    running = first_row(con.execute("SELECT count(*) FROM runs WHERE status = 'running'"))[0]
    if running:
        result.warnings.append(f"{running} run(s) still marked running although no writer holds the file: "
                               "they were killed (incomplete; their flushed data is kept)")
    incomplete = first_row(con.execute("SELECT count(*) FROM runs WHERE status = 'incomplete'"))[0]
    if incomplete:
        result.warnings.append(f"{incomplete} incomplete run(s) (stopped before the end; their flushed data is kept)")
    return result
