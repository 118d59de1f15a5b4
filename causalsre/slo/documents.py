"""Reading a YAML spec file: every document, parsed safely and within limits, each a mapping.

Shared by the OpenSLO loader (:mod:`causalsre.slo.spec`) and the Sloth AlertWindows loader
(:mod:`causalsre.slo.windows`), so neither imports the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from causalsre.safeio import load_yaml_documents


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """All YAML documents of a file, each a mapping, read by :mod:`causalsre.safeio` (size limit, strict
    UTF-8, nesting and alias limits: an alias bomb is refused before anything is expanded)."""
    docs = load_yaml_documents(path, what="SLO spec")
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise UserError(f"{path}: document {index + 1} is not a mapping", "each document needs apiVersion/kind")
    return docs
