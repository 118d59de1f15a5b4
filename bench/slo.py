"""SLO report benchmark: DuckDB against pandas on the same generated requests, printed as JSON.

    python bench/slo.py --json                       # 10 million requests (the issue's target)
    python bench/slo.py --num-requests 1000000 --json

Also available as `causalsre bench slo`. The JSON carries the ratio against the pandas baseline measured in
the same run, and whether both implementations produced the same numbers.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-requests", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (the target machine has 2 cores)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", help="folder for the temporary database (default: the system temp dir)")
    parser.add_argument("--json", action="store_true", help="print only the JSON report")
    args = parser.parse_args(argv)
    if args.num_requests < 1000:
        parser.error("--num-requests must be at least 1000")
    from causalsre.slo.benchmark import run_benchmark

    report = run_benchmark(args.num_requests, args.seed, args.threads, args.repeats, args.workdir)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['num_requests']:,} requests: DuckDB report {report['duckdb_report_s']} s, pandas "
              f"{report['pandas_total_s']} s ({report['pandas_load_s']} s load + {report['pandas_compute_s']} s "
              f"compute): {report['speedup_vs_pandas_total']}x faster; numbers agree: {report['numbers_agree']}")
    return 0 if report["numbers_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
