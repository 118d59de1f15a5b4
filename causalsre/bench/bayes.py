"""Benchmark: fit and what-if on N requests of the known SCM, against a named baseline in the same run.

    python -m causalsre.bayes.benchmark --requests 100000 --baseline-requests 20000

Prints JSON. Baseline: the same model and sampler fitted on one Bernoulli cell per request (no binomial
aggregation), on ``--baseline-requests`` requests; the ratio compares throughput (requests per second of
fitting), since the baseline on all requests takes many minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--baseline-requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from causalsre.bayes import fit_burn_model, load_priors
    from causalsre.bayes.encoding import FactorEncoding
    from causalsre.bayes.factors import actionable_in_table, adjustment_factors, graph_view
    from causalsre.bayes.model import BurnModel
    from causalsre.bayes.synthetic import serving_graph, simulate
    from causalsre.whatif.gcm_predict import GcmWhatIf

    graph = serving_graph()
    table = simulate(args.requests, seed=args.seed)
    window = table[(table["run_id"] == "run-0") & (table["phase"] == "incident")]
    result = {"requests": args.requests, "window_requests": int(len(window)), "machine": platform.machine(),
              "cpus": os.cpu_count()}

    start = time.perf_counter()
    fitted = fit_burn_model(table, graph, slo="bench", objective=0.95, db_fingerprint="bench", seed=args.seed)
    result["fit_s"] = time.perf_counter() - start
    result["fit_cells"] = int(fitted.idata.posterior.attrs["n_cells"])
    attrs = fitted.idata.posterior.attrs
    result["fit_parts_s"] = {"cells_and_model": attrs.get("build_s"), "nutpie_compile": attrs.get("compile_s"),
                             "sampling": attrs.get("sample_s")}
    result["fit_diagnostics"] = fitted.diagnostics().one_line()

    start = time.perf_counter()
    fitted.bad_rate(window, {"max_num_seqs": 16.0})
    result["bayes_whatif_s"] = time.perf_counter() - start

    start = time.perf_counter()
    gcm_model = GcmWhatIf.fit(table, graph_view(graph), seed=args.seed)
    gcm_model.bad_rate(window, {"max_num_seqs": 16.0})
    result["gcm_fit_and_whatif_s"] = time.perf_counter() - start

    baseline_table = table.sample(args.baseline_requests, random_state=args.seed)
    view = graph_view(graph)
    priors = load_priors()
    encoding = FactorEncoding.fit(baseline_table, adjustment_factors(view, baseline_table),
                                  actionable_in_table(view, baseline_table))
    start = time.perf_counter()
    BurnModel(priors, encoding).fit(baseline_table, seed=args.seed, aggregate=False)
    result["baseline"] = "same model and sampler, one Bernoulli cell per request"
    result["baseline_requests"] = args.baseline_requests
    result["baseline_fit_s"] = time.perf_counter() - start
    ours = args.requests / result["fit_s"]
    theirs = args.baseline_requests / result["baseline_fit_s"]
    result["fit_throughput_ratio_vs_baseline"] = ours / theirs
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
