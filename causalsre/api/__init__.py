"""The notebook API: ``import causalsre as cs``; ``cs.postmortem(cs.connect(db), baseline=..., incident=...)``.

Verbs (one per CLI command, one implementation): :func:`connect`, :func:`slo_report`, :func:`postmortem`,
:func:`whatif`, :func:`attribute`. Results have ``to_frame``, ``to_json`` (the command's ``--json``),
``plot`` (a matplotlib Figure) and display as a table in Jupyter. See docs/api.md.
"""

from causalsre.api.calls import attribute, connect, postmortem, root_causes_json, slo_report, whatif
from causalsre.api.results import Attribution, Postmortem, Result, SloReport, WhatIf

__all__ = ["Attribution", "Postmortem", "Result", "SloReport", "WhatIf", "attribute", "connect", "postmortem",
           "root_causes_json", "slo_report", "whatif"]
