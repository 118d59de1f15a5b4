"""Round 10 at the importers' JSON files: a byte-order mark.

Before: a vllm-bench, guidellm, otel or Prometheus query_range JSON file saved with a UTF-8 byte-order mark
(PowerShell's ``Out-File``, Notepad) was "not valid JSON (Unexpected UTF-8 BOM (decode using utf-8-sig))",
while the spec and config readers and the CSV importers skipped the mark. Now the importers skip it too and
import what the file without it imports.
"""

from __future__ import annotations

import duckdb
import pytest

from causalsre.cli.main import main
from tests.conftest import FIXTURES

FILES = [  # (importer, fixture, table and its rows' count)
    ("vllm-bench", FIXTURES / "vllm_bench_small.json", "requests"),
    ("guidellm", FIXTURES / "guidellm" / "benchmarks_small.json", "requests"),
    ("otel", FIXTURES / "otel" / "traces.otlp.json", "requests"),
    ("prometheus", FIXTURES / "prometheus" / "query_range.json", "metric_samples"),
]


def _rows(db, table: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # table: a literal of this test


@pytest.mark.parametrize("importer, fixture, table", FILES, ids=[f[0] for f in FILES])
def test_a_json_file_with_a_byte_order_mark_imports_as_without_it(importer, fixture, table, tmp_path, capsys):
    marked = tmp_path / fixture.name
    marked.write_bytes(b"\xef\xbb\xbf" + fixture.read_bytes())
    code = main(["db", "import", importer, str(marked), "--db", str(tmp_path / "bom.duckdb")])
    assert code == 0, capsys.readouterr().err
    assert main(["db", "import", importer, str(fixture), "--db", str(tmp_path / "plain.duckdb")]) == 0
    assert _rows(tmp_path / "bom.duckdb", table) == _rows(tmp_path / "plain.duckdb", table) > 0
