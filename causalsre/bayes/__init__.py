"""Bayesian models over graph factors: the hierarchical logistic burn model (bad-event probability) and the
log-latency model, two small subclasses of one base (``model.py``: build, fit, draws, diagnostics, save/load).

Public API (PyMC is imported only when a model is built or fitted):

    from causalsre.bayes import fit_burn_model, load_burn_model, database_fingerprint
    fitted = fit_burn_model(table, graph, slo=slo, objective=0.99, db_fingerprint=database_fingerprint(con))
    fitted.save("fit.nc"); fitted.diagnostics().warnings
    draws = fitted.burn_rate(window_table, {"max_num_seqs": 16})     # posterior predictive draws
    attribute_burn_change(fitted.draws(), fitted.encoding, before, after, objective=0.99)
    latency = fit_latency_model(table, graph, metric="ttft_s")    # cached: the next call loads this fit
    latency.predict(window_table, {"max_num_seqs": 16})["p90"]
"""

import warnings

with warnings.catch_warnings():
    # ArviZ warns once a day, on import, with a multi-line banner about its coming refactor: noise in the
    # middle of `causalsre demo` and every report. Only that message is silenced, and only for this import
    # (PyMC and the modules below import ArviZ too; after this first import they find it loaded).
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
    import arviz  # noqa: F401

# PyTensor warns, with a five-line banner, that it found no BLAS when it first compiles a model (pip wheels
# never do): a banner in the middle of `causalsre whatif` output that the user cannot act on and that says
# nothing about the results. Only that message is ignored.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)

from causalsre.bayes.api import FittedBurnModel, config_hash, fit_burn_model, load_burn_model, slo_key
from causalsre.bayes.latency import FittedLatencyModel, fit_latency_model, load_latency_model
from causalsre.bayes.model import BayesModel, BurnModel, FittedModel
from causalsre.bayes.attribution import attribute_burn_change
from causalsre.bayes.diagnostics import Diagnostics, diagnose
from causalsre.bayes.predict import interval
from causalsre.bayes.priors import Priors, load_priors
from causalsre.bayes.store import database_fingerprint

__all__ = [
    "BayesModel", "BurnModel", "Diagnostics", "FittedBurnModel", "FittedLatencyModel", "FittedModel", "Priors",
    "attribute_burn_change", "config_hash", "database_fingerprint", "diagnose", "fit_burn_model",
    "fit_latency_model", "interval", "load_burn_model", "load_latency_model", "load_priors", "slo_key",
]
