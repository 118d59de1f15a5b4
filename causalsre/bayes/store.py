"""Save and load fitted burn models as NetCDF InferenceData with provenance.

A fit records the model type and version, a hash of its configuration (priors, factors, SLO) and a
fingerprint of the database it was fitted on. Loading checks both: predictions from a model fitted to other
data, or with other priors or another SLO, would look fine and be wrong, so they are refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import arviz as az

from causalsre.bayes.encoding import FactorEncoding
from causalsre.bayes.model import MODEL_TYPE
from causalsre.errors import UserError

_PROVENANCE = ("model_type", "model_version", "config_hash", "db_fingerprint")


def database_fingerprint(con) -> str:
    """A hash of what the database holds: its runs, their request counts and last timestamps, and settings.

    Cheap (aggregates only) and changes whenever requests are added, removed or rewritten."""
    rows = con.execute(
        "SELECT run_id, count(*), sum(hash(request_id)), max(finish_ns), sum(CASE WHEN status = 'ok' THEN 1 END) "
        "FROM requests GROUP BY run_id ORDER BY run_id"
    ).fetchall()
    settings = con.execute("SELECT count(*), sum(hash(run_id || setting || start_ns)) FROM run_settings").fetchall()
    return hashlib.sha256(repr((rows, settings)).encode()).hexdigest()[:16]


def attach_provenance(idata: az.InferenceData, *, version: int, config_hash: str, db_fingerprint: str,
                      encoding: FactorEncoding, slo_name: str, objective: float) -> None:
    attrs = idata.posterior.attrs
    attrs.update(model_type=MODEL_TYPE, model_version=int(version), config_hash=config_hash,
                 db_fingerprint=db_fingerprint, factor_encoding=encoding.to_json(), slo_name=slo_name,
                 slo_objective=float(objective))


def save_fit(idata: az.InferenceData, path: str | Path) -> Path:
    path = Path(path)
    missing = [k for k in _PROVENANCE if k not in idata.posterior.attrs]
    if missing:
        raise ValueError(f"fit has no provenance {missing}; call attach_provenance first")
    if not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist", "create it or choose another --out")
    idata.to_netcdf(str(path))
    return path


def load_fit(path: str | Path, *, version: int, config_hash: str, db_fingerprint: str) -> az.InferenceData:
    """Load a saved fit, refusing one made by another model, configuration or database."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"fit file {path} does not exist", "create it with `causalsre fit --out FILE.nc`")
    try:
        idata = az.from_netcdf(str(path))
    except Exception as exc:  # netCDF/HDF5 raise many types for a bad file
        raise UserError(f"{path} is not a saved fit ({type(exc).__name__})", "refit with `causalsre fit`") from None
    attrs = idata.posterior.attrs if "posterior" in idata else {}
    if attrs.get("model_type") != MODEL_TYPE or int(attrs.get("model_version", -1)) != int(version):
        raise UserError(
            f"{path} holds a {attrs.get('model_type')} v{attrs.get('model_version')} fit, "
            f"not {MODEL_TYPE} v{version}", "refit with `causalsre fit`")
    if attrs.get("config_hash") != config_hash:
        raise UserError(f"{path} was fitted with other priors, graph factors or SLO",
                        "refit with `causalsre fit` for this configuration")
    if attrs.get("db_fingerprint") != db_fingerprint:
        raise UserError(f"{path} was fitted on a different database (or the database changed since)",
                        "refit with `causalsre fit --db` on this database")
    return idata


def encoding_of(idata: az.InferenceData) -> FactorEncoding:
    return FactorEncoding.from_json(idata.posterior.attrs["factor_encoding"])
