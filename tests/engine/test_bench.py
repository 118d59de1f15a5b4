"""The benchmark's plumbing on a very small run (its speed figures are not asserted: they are benchmarks)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from causalsre.cli.main import main  # noqa: E402
from harness.engine.benchmark.hf_baselines import build_hf_model  # noqa: E402
from harness.engine.config import ModelConfig  # noqa: E402
from harness.engine.model import Llama  # noqa: E402


def test_hf_baseline_model_has_our_weights():
    torch.set_num_threads(1)
    model = Llama(ModelConfig.from_name("tiny"))
    model.init_weights(0)
    hf = build_hf_model(model, torch.device("cpu"), torch.float32)
    ids = torch.tensor([[5, 17, 300, 4000, 9, 9, 1]])
    with torch.inference_mode():
        torch.testing.assert_close(hf(ids).logits, model.forward_dense(ids), atol=1e-5, rtol=1e-5)


def test_bench_engine_json(capsys):
    code = main(["bench", "engine", "--preset", "tiny", "--num-requests", "3", "--prompt-lengths", "4:12",
                 "--output-lengths", "2:4", "--threads", "1", "--rounds", "1", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("throughput_tok_s", "p99_tpot_s", "telemetry", "roofline_fraction", "baselines", "model"):
        assert key in report
    assert len(report["machine"]["load_average_start"]) == len(report["machine"]["load_average_end"]) == 3
    for name in ("hf_static_generate", "hf_continuous_batching"):
        baseline = report["baselines"][name]
        assert {"throughput_tok_s", "p99_tpot_s", "ratio"} <= set(baseline)
        assert baseline["output_tokens"] == report["output_tokens"]
        assert baseline["same_tokens_fraction"] == 1.0        # same weights, greedy: same tokens
    assert 0 < report["roofline_fraction"]["batch_1"]
    roofline = report["roofline"]
    assert roofline["probes"] == 3             # before the round, between its phases, after it
    assert len(roofline["probe_values"]) == 3
    assert roofline["matmul_gflop_s"] == max(p["matmul_gflop_s"] for p in roofline["probe_values"])
    assert roofline["matmul_probe"].startswith("model projection shapes")
    assert 0 < roofline["bandwidth_spread"] <= 1 and 0 < roofline["matmul_spread"] <= 1
    old = report["roofline_fraction"]["against_sgemm1024"]       # the previous yardstick, same run
    assert 0 < old["batch_1"] and old["benchmark"] is not None
    assert report["telemetry"]["calls"] > 0


def test_roofline_ceiling_is_the_best_probe_and_its_spread():
    from harness.engine.benchmark.roofline import best_hardware
    probes = [{"bandwidth_bytes_s": 4e9, "matmul_flop_s": 50e9, "matmul_n": 1024},
              {"bandwidth_bytes_s": 8e9, "matmul_flop_s": 20e9, "matmul_n": 1024}]
    best = best_hardware(probes)
    assert (best["bandwidth_bytes_s"], best["matmul_flop_s"]) == (8e9, 50e9)
    assert (best["bandwidth_spread"], best["matmul_spread"]) == (0.5, 0.4)
    with pytest.raises(ValueError):
        best_hardware([])


@pytest.mark.parametrize("preset", ["tiny", "small", "large"])
def test_model_gemm_probe_covers_every_projection_of_a_step(preset):
    # the compute ceiling's shapes must be the step's matmuls: their FLOPs at one row are the dense FLOPs the
    # roofline charges a batch-1 step with no context (every weight but the embedding and the norms, once)
    from harness.engine.benchmark.roofline import decode_step_cost, projection_shapes
    mc = ModelConfig.from_name(preset)
    norms = (2 * mc.num_layers + 1) * mc.hidden_size
    _, flops = decode_step_cost(mc, batch=1, context_tokens=0, dtype_bytes=4)
    assert sum(2 * out_f * in_f * times for out_f, in_f, times in projection_shapes(mc)) == flops - 2 * norms


def test_roofline_reports_both_yardsticks():
    # a compute-bound step against a ceiling half the old one: its fraction doubles, the old one stays visible
    from harness.engine.benchmark.roofline import decode_step_cost, roofline_seconds
    mc = ModelConfig.from_name("small")
    nbytes, flops = decode_step_cost(mc, batch=32, context_tokens=0, dtype_bytes=4)
    hardware = {"bandwidth_bytes_s": 1e15, "matmul_flop_s": 20e9, "sgemm_flop_s": 40e9}
    assert roofline_seconds(mc, 32, 0, 4, hardware) == pytest.approx(flops / 20e9)
    assert roofline_seconds(mc, 32, 0, 4, hardware, "sgemm_flop_s") == pytest.approx(flops / 40e9)
    probes = [{"bandwidth_bytes_s": 4e9, "matmul_flop_s": 30e9, "sgemm_flop_s": 60e9, "matmul_n": 1024},
              {"bandwidth_bytes_s": 8e9, "matmul_flop_s": 60e9, "sgemm_flop_s": 30e9, "matmul_n": 1024}]
    from harness.engine.benchmark.roofline import best_hardware
    best = best_hardware(probes)
    assert (best["matmul_flop_s"], best["sgemm_flop_s"], best["sgemm_spread"]) == (60e9, 60e9, 0.5)


def test_bench_rejects_bad_flags(capsys):
    assert main(["bench", "engine", "--preset", "giant"]) == 2
    assert main(["bench", "engine", "--prompt-lengths", "9:3"]) == 2
    assert "error:" in capsys.readouterr().err


def test_bench_reports_a_failing_continuous_batching_baseline(capsys, monkeypatch):
    # transformers' continuous-batching API changes between releases: a failure is reported, not raised
    from harness.engine.benchmark import hf_baselines

    def broken(*args, **kwargs):
        raise TypeError("unexpected keyword argument 'page_size'")

    monkeypatch.setattr(hf_baselines, "run_continuous", broken)
    code = main(["bench", "engine", "--preset", "tiny", "--num-requests", "2", "--prompt-lengths", "4:8",
                 "--output-lengths", "2:3", "--threads", "1", "--rounds", "1", "--baselines", "continuous",
                 "--json"])
    assert code == 0
    skipped = json.loads(capsys.readouterr().out)["baselines"]["hf_continuous_batching"]["skipped"]
    assert skipped.startswith("failed on transformers") and "page_size" in skipped


def test_hf_keyword_filter_keeps_only_accepted_names():
    from harness.engine.benchmark.hf_baselines import _accepted

    def takes(a, b=1):
        return a, b

    assert _accepted(takes, {"a": 1, "b": 2, "c": 3}) == {"a": 1, "b": 2}
    assert _accepted(lambda **kw: kw, {"c": 3}) == {"c": 3}


@pytest.mark.parametrize("per_op", [True, False])
def test_decode_profile_accounts_for_the_step_and_restores_the_modules(per_op):
    from harness.engine import cpu_kernels
    from harness.engine import model as model_module
    from harness.engine.benchmark.profile import profile_decode

    before = (model_module._project, model_module.linear, cpu_kernels.paged_decode_attention,
              cpu_kernels.decoder_stack)
    result = profile_decode(preset="tiny", batch=3, threads=1, steps=3, per_op=per_op)
    parts = result["components_ms"]
    # the stack hides the kernels, the lm_head included
    inside = {"attention", "projections (matmuls)"} if per_op else {"decoder layers + lm_head (one C call)"}
    assert {"scheduler", "other forward ops"} | inside <= set(parts)
    assert all(value >= 0 for name, value in parts.items() if name not in ("other forward ops",
                                                                         "engine loop and sampling"))
    assert abs(sum(parts.values()) - result["step_ms"]) < 0.01 * result["step_ms"] + 0.01
    assert (model_module._project, model_module.linear, cpu_kernels.paged_decode_attention,
            cpu_kernels.decoder_stack) == before
