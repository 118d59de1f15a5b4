"""Reading a YAML spec file: every document, parsed with ``safe_load`` only, each a mapping.

Shared by the OpenSLO loader (:mod:`causalsre.slo.spec`) and the Sloth AlertWindows loader
(:mod:`causalsre.slo.windows`), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from causalsre.errors import UserError


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """All YAML documents of a file (safe_load only), each a mapping."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"SLO spec {path} does not exist", "check the path")
    try:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML ({' '.join(str(exc).split())})", "fix the YAML syntax") from None
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise UserError(f"{path}: document {index + 1} is not a mapping", "each document needs apiVersion/kind")
    return docs
