"""Benchmark: fit and what-if on N requests of the known SCM, against a named baseline in the same run.

    causalsre bench bayes --requests 100000 --baseline-requests 20000 --json

Returns a JSON-ready dict. Baseline: the same model and sampler fitted on one Bernoulli cell per request (no binomial
aggregation), on ``--baseline-requests`` requests; the ratio compares throughput (requests per second of
fitting), since the baseline on all requests takes many minutes on 2 cores.
"""

from __future__ import annotations

import os
import platform
import time


def run(requests: int = 100_000, baseline_requests: int = 20_000, seed: int = 0) -> dict:
    """Fit on ``requests`` (binomial cells), time a what-if, and fit the per-request baseline; a dict."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from causalsre.bayes import fit_burn_model, load_priors
    from causalsre.bayes.encoding import FactorEncoding
    from causalsre.bayes.factors import actionable_in_table, adjustment_factors, graph_view
    from causalsre.bayes.model import BurnModel
    from causalsre.bayes.synthetic import serving_graph, simulate
    from causalsre.whatif.gcm_predict import GcmWhatIf

    graph = serving_graph()
    table = simulate(requests, seed=seed)
    window = table[(table["run_id"] == "run-0") & (table["phase"] == "incident")]
    result = {"requests": requests, "window_requests": int(len(window)), "machine": platform.machine(),
              "cpus": os.cpu_count()}

    start = time.perf_counter()
    fitted = fit_burn_model(table, graph, slo="bench", objective=0.95, db_fingerprint="bench", seed=seed)
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
    gcm_model = GcmWhatIf.fit(table, graph_view(graph), seed=seed)
    gcm_model.bad_rate(window, {"max_num_seqs": 16.0})
    result["gcm_fit_and_whatif_s"] = time.perf_counter() - start

    baseline_table = table.sample(baseline_requests, random_state=seed)
    view = graph_view(graph)
    priors = load_priors()
    encoding = FactorEncoding.fit(baseline_table, adjustment_factors(view, baseline_table),
                                  actionable_in_table(view, baseline_table))
    start = time.perf_counter()
    BurnModel(priors, encoding).fit(baseline_table, seed=seed, aggregate=False)
    result["baseline"] = "same model and sampler, one Bernoulli cell per request"
    result["baseline_requests"] = baseline_requests
    result["baseline_fit_s"] = time.perf_counter() - start
    ours = requests / result["fit_s"]
    theirs = baseline_requests / result["baseline_fit_s"]
    result["fit_throughput_ratio_vs_baseline"] = ours / theirs
    result["machine_load_average_1m"] = round(os.getloadavg()[0], 2)
    return result
