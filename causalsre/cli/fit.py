"""`causalsre fit`: fit the hierarchical Bayesian burn model and save it with provenance."""

from __future__ import annotations

import json

import click

from causalsre.cli.options import DB, GRAPH, PRIORS, SEED, SLO, SLO_NAME, OutputPath, json_option  # noqa: F401  (shared)
from causalsre.whatif.run import fit_for, load_or_fit  # noqa: F401  (re-exported for the CLI)


def echo_diagnostics(diag) -> None:
    click.echo(diag.one_line())
    for warning in diag.warnings:
        click.echo(f"warning: {warning}", err=True)


@click.command("fit")
@DB
@SLO
@SLO_NAME
@GRAPH
@PRIORS
@click.option("--out", "out_path", type=OutputPath(suffixes=(".nc", ".nc4")), help="Save the fit here (NetCDF, .nc).")
@click.option("--sampler", type=click.Choice(["auto", "nutpie", "pymc", "prior"]), default="auto", show_default=True,
              help="auto: nutpie when installed, else PyMC NUTS; prior: prior draws only (no fitting).")
# Upper bounds: 10**20 draws or chains ran (allocating) until killed.
@click.option("--draws", type=click.IntRange(10, 100_000), help="Draws per chain (default from the priors file).")
@click.option("--tune", type=click.IntRange(10, 100_000), help="Tuning steps per chain.")
@click.option("--chains", type=click.IntRange(1, 64), help="Chains.")
@SEED
@json_option("Print coefficients and diagnostics as JSON.")
def fit(db_path, slo_path, slo_name, graph_path, priors_path, out_path, sampler, draws, tune, chains, seed, as_json):
    """Fit the Bayesian burn model (bad-event probability over graph factors, pooled over runs/phases/tenants).

    Example: causalsre fit --db telemetry.duckdb --slo models/slos/llm-serving.yaml --out fit.nc
    """
    import numpy as np

    from causalsre.whatif.context import Context

    ctx = Context.open(db_path, slo_path, slo_name, graph_path)
    try:
        fitted = fit_for(ctx, priors_path=priors_path, sampler=sampler, draws=draws, tune=tune, chains=chains,
                         seed=seed, progress=not as_json)
    finally:
        ctx.close()
    if out_path:
        fitted.save(out_path)
    diag = fitted.diagnostics()
    post = fitted.idata.posterior
    coefs = {}
    if "beta" in post:
        for name in post["coef"].values:
            values = post["beta"].sel(coef=name).values.ravel()
            coefs[str(name)] = {"mean": float(values.mean()), "low": float(np.quantile(values, 0.05)),
                                "high": float(np.quantile(values, 0.95))}
    if as_json:
        click.echo(json.dumps({"coefficients": coefs, "diagnostics": diag.to_dict(), "saved": out_path,
                               "cells": post.attrs.get("n_cells"), "requests": post.attrs.get("n_requests"),
                               **{k: post.attrs[k] for k in ("model_type", "model_version", "config_hash",
                                                              "db_fingerprint")}}, indent=2))
        return
    click.echo(f"{post.attrs['model_type']} v{post.attrs['model_version']}: {post.attrs.get('n_requests')} requests "
               f"in {post.attrs.get('n_cells')} cells")
    click.echo("coefficient (logit per SD of factor)     mean     90% interval")
    for name, c in coefs.items():
        click.echo(f"  {name:<36} {c['mean']:+8.3f}  [{c['low']:+.3f}, {c['high']:+.3f}]")
    echo_diagnostics(diag)
    if out_path:
        click.echo(f"wrote {out_path}")
