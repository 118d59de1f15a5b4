"""No lookup leaves a DuckDB result unfinished.

DuckDB 2 keeps the result of a ``fetchone()`` open on its connection and then refuses ``register()`` and
``sql()`` there ("connection has an unfinished result"): a lookup followed by a DataFrame registration failed
only on the paths where the two met. Every lookup goes through ``causalsre.telemetry.first_row``, which reads
the result to its end; this test keeps ``fetchone()`` out of the product and checks that the helper frees the
connection.
"""

from pathlib import Path

import duckdb
import pandas as pd

from causalsre.telemetry import first_row

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_calls_fetchone():
    offenders = [f"{path.relative_to(ROOT)}:{number}"
                 for package in ("causalsre", "harness")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if ".fetchone()" in line and "``fetchone()``" not in line]
    assert offenders == [], f"use causalsre.telemetry.first_row instead of fetchone(): {offenders}"


def test_first_row_leaves_the_connection_free_for_register():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT range AS a FROM range(5)")
    assert first_row(con.execute("SELECT a FROM t ORDER BY a")) == (0,)
    assert first_row(con.execute("SELECT a FROM t WHERE a > 10")) is None
    con.register("frame", pd.DataFrame({"b": [7]}))  # refused after an unfinished fetchone() on DuckDB 2
    assert con.sql("SELECT b FROM frame").fetchall() == [(7,)]
