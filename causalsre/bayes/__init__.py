"""Bayesian burn models: hierarchical logistic models of the bad-event probability over graph factors.

Public API (PyMC is imported only when a model is built or fitted):

    from causalsre.bayes import fit_burn_model, load_burn_model, database_fingerprint
    fitted = fit_burn_model(table, graph, slo=slo, objective=0.99, db_fingerprint=database_fingerprint(con))
    fitted.save("fit.nc"); fitted.diagnostics().warnings
    draws = fitted.burn_rate(window_table, {"max_num_seqs": 16})     # posterior predictive draws
    attribute_burn_change(fitted.draws(), fitted.encoding, before, after, objective=0.99)
"""

import warnings

with warnings.catch_warnings():
    # ArviZ warns once a day, on import, with a multi-line banner about its coming refactor: noise in the
    # middle of `causalsre demo` and every report. Only that message is silenced, and only for this import
    # (PyMC and the modules below import ArviZ too; after this first import they find it loaded).
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
    import arviz  # noqa: F401

from causalsre.bayes.api import FittedBurnModel, config_hash, fit_burn_model, load_burn_model, slo_key
from causalsre.bayes.attribution import attribute_burn_change
from causalsre.bayes.diagnostics import Diagnostics, diagnose
from causalsre.bayes.predict import interval
from causalsre.bayes.priors import Priors, load_priors
from causalsre.bayes.store import database_fingerprint

__all__ = [
    "Diagnostics", "FittedBurnModel", "Priors", "attribute_burn_change", "config_hash", "database_fingerprint",
    "diagnose", "fit_burn_model", "interval", "load_burn_model", "load_priors", "slo_key",
]
