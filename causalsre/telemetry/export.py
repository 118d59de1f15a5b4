"""Export a telemetry database to Parquet, Hive-partitioned by run, for Spark, Trino or DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.dataset as ds

from causalsre.errors import UserError
from causalsre.telemetry.schema import REQUIRED_TABLES
from causalsre.telemetry.schema import first_row

# Tables and views written; the view is included so other engines get the derived metrics as defined here.
EXPORTED = REQUIRED_TABLES + ("request_metrics",)


def export_parquet(con: duckdb.DuckDBPyConnection, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, int]:
    """Write each table as OUT/<table>/run_id=<id>/*.parquet; returns rows written per table."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a folder", "choose a folder path for --parquet")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"folder {out} is not empty", "choose an empty folder or pass --overwrite")
    if out.exists():
        from causalsre.safeio import refuse_links_inside

        refuse_links_inside(out, what=f"--parquet {out}")  # pyarrow writes through a link to a file elsewhere
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for table in EXPORTED:
        count = first_row(con.execute(f"SELECT count(*) FROM {table}"))[0]
        written[table] = count
        if count == 0:
            continue
        # Streamed through Arrow, so no path is ever spliced into SQL and memory stays bounded.
        reader = _arrow_reader(con, f"SELECT * FROM {table}")
        ds.write_dataset(reader, out / table, format="parquet", partitioning=["run_id"],
                         partitioning_flavor="hive", existing_data_behavior="overwrite_or_ignore",
                         basename_template="part-{i}.parquet")
    return written


def _arrow_reader(con: duckdb.DuckDBPyConnection, query: str):
    """A streaming Arrow reader over a query (DuckDB 2 renamed fetch_record_batch to to_arrow_reader)."""
    # A cursor of its own: DuckDB 2 refuses a relation while an earlier execute() result is unfinished.
    relation = con.cursor().sql(query)
    if hasattr(relation, "to_arrow_reader"):
        return relation.to_arrow_reader(100_000)
    return relation.record_batch(100_000)
