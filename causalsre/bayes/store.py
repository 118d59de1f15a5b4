"""Save and load fitted models (burn and latency) as NetCDF InferenceData with provenance.

A fit records the model type and version, a hash of its configuration (priors, factors, SLO or metric) and
a fingerprint of the data it was fitted on. Loading checks all three: predictions from a model fitted to
other data, or with other priors or another SLO, would look fine and be wrong, so they are refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import arviz as az

from causalsre.bayes.encoding import FactorEncoding
from causalsre.errors import UserError
from causalsre.safeio import regular_file, write_with

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
                      encoding: FactorEncoding, model_type: str, **extra) -> None:
    """Record what made this fit; ``extra`` holds the model's own (the burn model's slo_name and
    slo_objective, the latency model's metric)."""
    attrs = idata.posterior.attrs
    attrs.update(model_type=model_type, model_version=int(version), config_hash=config_hash,
                 db_fingerprint=db_fingerprint, factor_encoding=encoding.to_json(), **extra)


def _netcdf_safe(idata: az.InferenceData) -> az.InferenceData:
    """The fit with every attribute netCDF can store: samplers put what they like in the attributes
    (nutpie 0.16.11 a dict of its settings), and netCDF takes only strings, numbers and arrays, so anything
    else is kept as its JSON text rather than failing the save."""
    import json
    from numbers import Number

    import numpy as np

    # InferenceData's own attributes (where nutpie puts its settings), each group's, each variable's.
    everywhere = [getattr(idata, "_attrs", None) or {}]
    for group in idata.groups():
        dataset = getattr(idata, group)
        everywhere += [dataset.attrs] + [dataset[name].attrs for name in dataset.variables]
    for attrs in everywhere:
        for key, value in list(attrs.items()):
            if not isinstance(value, (str, Number, np.ndarray, list, tuple, bytes)):
                attrs[key] = json.dumps(value, default=str)
    return idata


def save_fit(idata: az.InferenceData, path: str | Path) -> Path:
    path = Path(path)
    missing = [k for k in _PROVENANCE if k not in idata.posterior.attrs]
    if missing:
        raise ValueError(f"fit has no provenance {missing}; call attach_provenance first")
    if not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist", "create it or choose another --out")
    safe = _netcdf_safe(idata)
    write_with(path, lambda scratch: safe.to_netcdf(str(scratch)), what="fit")
    return path


def load_fit(path: str | Path, *, version: int, config_hash: str, db_fingerprint: str,
             model_type: str) -> az.InferenceData:
    """Load a saved fit, refusing one made by another model, configuration or database."""
    path = Path(path)
    regular_file(path, what="fit file", missing_fix="create it with `causalsre fit --out FILE.nc`")
    try:
        idata = az.from_netcdf(str(path))
    except Exception as exc:  # netCDF/HDF5 raise many types for a bad file
        raise UserError(f"{path} is not a saved fit ({type(exc).__name__})", "refit with `causalsre fit`") from None
    attrs = idata.posterior.attrs if "posterior" in idata else {}
    if attrs.get("model_type") != model_type or int(attrs.get("model_version", -1)) != int(version):
        raise UserError(
            f"{path} holds a {attrs.get('model_type')} v{attrs.get('model_version')} fit, "
            f"not {model_type} v{version}", "refit with `causalsre fit`")
    if attrs.get("config_hash") != config_hash:
        raise UserError(f"{path} was fitted with other priors, graph factors or SLO",
                        "refit with `causalsre fit` for this configuration")
    if attrs.get("db_fingerprint") != db_fingerprint:
        raise UserError(f"{path} was fitted on a different database (or the database changed since)",
                        "refit with `causalsre fit --db` on this database")
    return idata


def encoding_of(idata: az.InferenceData) -> FactorEncoding:
    return FactorEncoding.from_json(idata.posterior.attrs["factor_encoding"])


def table_fingerprint(frame) -> str:
    """A hash of the rows a model sees (its factor, group and outcome columns): the key of a cached fit when
    there is no database to fingerprint (a model fitted on any analysis table)."""
    import numpy as np
    import pandas as pd

    hashed = pd.util.hash_pandas_object(frame.reset_index(drop=True), index=True).to_numpy(dtype=np.uint64)
    return hashlib.sha256(hashed.tobytes() + repr(list(frame.columns)).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """Where fits are cached for reuse: $CAUSALSRE_CACHE_DIR, else $XDG_CACHE_HOME/causalsre, else
    ~/.cache/causalsre (each under ``fits/``)."""
    import os

    root = os.environ.get("CAUSALSRE_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                         Path.home() / ".cache") / "causalsre"
    return Path(root) / "fits"


def cache_save(idata: az.InferenceData, path: Path) -> Path | None:
    """Save a fit into the cache, atomically (a reader never sees half a file); a cache that cannot be
    written (read-only home, full disk) only costs the reuse, so it is skipped with no error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        safe = _netcdf_safe(idata)
        # never onto a device, a FIFO or a link put in the cache's place; write_with removes its scratch file
        write_with(path, lambda scratch: safe.to_netcdf(str(scratch)), what="cached fit")
        return path
    except (OSError, UserError):
        return None
