"""causalsre: why an LLM inference service burned its error budget, and what would have prevented it.

    import causalsre as cs
    con = cs.connect("telemetry.duckdb")                       # read-only
    cs.postmortem(con, baseline="phase:baseline@run-1", incident="phase:incident@run-1")

The verbs (``connect``, ``slo_report``, ``postmortem``, ``whatif``, ``attribute``) load on first use, so
``import causalsre`` stays fast (no pandas, PyMC or torch until a verb is called). See docs/api.md.
"""

import sys
import types

from causalsre.errors import UserError
from causalsre.version import __version__
_API = ("connect", "slo_report", "postmortem", "whatif", "attribute")
__all__ = ["UserError", "__version__", *_API]


def __getattr__(name: str):
    # PEP 562 lazy attributes: the API module (and what it imports) loads when a verb is first used.
    if name == "whatif":
        return _WHATIF
    if name in _API:
        from causalsre import api

        return getattr(api, name)
    raise AttributeError(f"module 'causalsre' has no attribute {name!r}")


class _WhatIfVerb:
    """``cs.whatif(...)`` is the verb :func:`causalsre.api.whatif`; any attribute (``cs.whatif.run``) is the
    ``causalsre.whatif`` subpackage's, so ``import causalsre.whatif.run as r`` keeps working."""

    __name__ = "causalsre.whatif"   # what ``import a.b.c as d`` falls back to when resolving through us

    def __call__(self, *args, **kwargs):
        from causalsre.api import whatif

        return whatif(*args, **kwargs)

    def __getattr__(self, name: str):
        import importlib

        return getattr(importlib.import_module("causalsre.whatif"), name)

    @property
    def __wrapped__(self):   # help(cs.whatif) and inspect.signature show the verb's
        from causalsre.api import whatif

        return whatif

    @property
    def __doc__(self):
        return self.__wrapped__.__doc__

    def __repr__(self) -> str:
        return "<causalsre verb whatif (the subpackage: causalsre.whatif)>"


_WHATIF = _WhatIfVerb()


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


class _Package(types.ModuleType):
    """``causalsre.whatif`` is both a subpackage and a verb. Importing the subpackage makes Python set it as
    an attribute of this package, which would hide the verb ``cs.whatif``; the import system finds
    subpackages through ``sys.modules`` anyway, so that attribute is simply not stored."""

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
