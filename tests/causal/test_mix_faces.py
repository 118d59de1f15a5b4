"""A length shift that only follows the tenant mix is the mix's face (causalsre.causal.mix_faces).

Generated from a known model: each tenant draws its lengths from its own distribution, and the incident
changes either only who sends (a flood by the tenant with long replies: the window's lengths move, no tenant's
own do) or also everyone's lengths (longer replies for all, beside the same flood). Only the first is a face.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from causalsre.bayes.paired import unreverted_changes
from causalsre.causal.changes import ALPHA, workload_shifts
from causalsre.causal.change_text import describe_change
from causalsre.causal.mix_faces import holds_within_tenants, mark_mix_faces

MEAN_OUTPUT = {"chat": 40.0, "batch": 400.0}


def _window(n: int, batch_share: float, scale: float, seed: int, start_s: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenant = np.where(rng.random(n) < batch_share, "batch", "chat")
    output = np.array([rng.gamma(4.0, scale * MEAN_OUTPUT[t] / 4.0) for t in tenant]).round()
    prompt = rng.integers(16, 128, size=n)
    arrival = pd.Timestamp("2026-12-01") + pd.to_timedelta(start_s + np.sort(rng.uniform(0, 600, n)), unit="s")
    return pd.DataFrame({"tenant": tenant, "output_tokens": output, "prompt_tokens": prompt, "arrival_ts": arrival,
                         "run_id": "r0"})


def _shifts(base, inc):
    shifts = workload_shifts(base, inc)
    mark_mix_faces(shifts, base, inc, ALPHA)
    return {s["name"]: s for s in shifts}


def test_a_flood_of_long_replies_makes_the_output_shift_its_face():
    base = _window(600, 0.1, 1.0, seed=1)
    inc = _window(600, 0.6, 1.0, seed=2, start_s=600)
    shifts = _shifts(base, inc)
    assert shifts["tenant"]["significant"] and shifts["output_tokens"]["significant"]
    assert shifts["output_tokens"].get("explained_by") == "tenant"
    assert "prompt_tokens" not in {n for n, s in shifts.items() if s.get("explained_by")}
    assert "follows the tenant mix" in describe_change(shifts["output_tokens"])


def test_longer_replies_for_everyone_beside_the_flood_stay_a_change_of_their_own():
    base = _window(600, 0.1, 1.0, seed=1)
    inc = _window(600, 0.6, 2.0, seed=3, start_s=600)
    shifts = _shifts(base, inc)
    assert shifts["output_tokens"]["significant"]
    assert holds_within_tenants("output_tokens", base, inc, ALPHA, 0.15) is True
    assert "explained_by" not in shifts["output_tokens"]


def test_without_a_significant_mix_change_nothing_is_a_face():
    base = _window(600, 0.1, 1.0, seed=1)
    inc = _window(600, 0.1, 2.0, seed=4, start_s=600)
    shifts = _shifts(base, inc)
    assert not shifts["tenant"]["significant"]
    assert not any(s.get("explained_by") for s in shifts.values())


def test_reverting_the_tenant_mix_takes_its_faces_with_it():
    base = _window(600, 0.1, 1.0, seed=1)
    inc = _window(600, 0.6, 1.0, seed=2, start_s=600)
    changes = list(_shifts(base, inc).values())
    assert unreverted_changes(changes, {"tenant", "arrival_rate", "offered_rate"}) == []
    # Reverting something else leaves the flood and its face in place.
    assert "output_tokens" in unreverted_changes(changes, {"max_num_seqs"})
