"""Running sweep configurations as Ray tasks.

Each task runs one configuration into its own DuckDB file on the worker and returns the file's bytes (a
few MB at most), so workers need no shared filesystem; the driver merges them into the target database.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from causalsre.errors import UserError
from causalsre.safeio import write_bytes
from harness.config import RunConfig, parse_run_config
from harness.merge import copy_runs


def _run_remote(config_json: dict, seed: int) -> tuple[str, bytes]:
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from harness.runner import run

    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "run.duckdb"
        run_id = run(parse_run_config(config_json), db, seed=seed)
        return run_id, db.read_bytes()


def run_on_ray(configs: list[RunConfig], seeds: list[int], db_path: str | Path, *,
               address: str | None = None, num_cpus_per_run: float = 1.0) -> list[str]:
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs ray", "pip install 'causalsre[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        task = ray.remote(num_cpus=num_cpus_per_run)(_run_remote)
        results = ray.get([task.remote(cfg.to_json_dict(), seed) for cfg, seed in zip(configs, seeds)])
    finally:
        if started_here:
            ray.shutdown()
    run_ids = []
    with tempfile.TemporaryDirectory() as folder:
        parts = []
        for index, (run_id, payload) in enumerate(results):
            part = Path(folder) / f"part{index}.duckdb"
            write_bytes(part, payload)
            parts.append(part)
            run_ids.append(run_id)
        copy_runs(parts, db_path)
    return run_ids
