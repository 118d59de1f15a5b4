"""``promtool tsdb dump`` output -> Prometheus text exposition, which :mod:`.scrapes` then reads.

An operator whose Prometheus still holds the run can dump its samples straight from the TSDB
(``promtool tsdb dump --match='{__name__=~"vllm:.*"}' DATA_DIR > dump.txt``). Each line is one sample as
``formatSeriesSet`` in prometheus/cmd/promtool/tsdb.go prints it, ``fmt.Printf("%s %g %d\\n", lbs, val,
ts)``: the series' labels as ``labels.Labels.String()`` writes them (``{__name__="vllm:num_requests_waiting",
engine="0", instance="host:8000"}``, values quoted by Go's ``strconv.Quote``), the value, and the time in
epoch milliseconds. Moving ``__name__`` in front of the braces gives a text-format sample with a timestamp
in milliseconds, the format the importer's parser already reads. Native histograms (a ``{count:...}``
value) are refused: vLLM exposes classic histograms, and those are dumped as ``_bucket`` series.
"""

from __future__ import annotations

import re

from causalsre.errors import UserError

_TIME = re.compile(r"^-?\d+$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def is_tsdb_dump(text: str) -> bool:
    return text.lstrip().startswith("{__name__=")


def to_exposition(text: str, name: str) -> str:
    """The dump as text-format lines ``name{labels} value timestamp_ms``."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        # Split from the right (value and time hold no space; label values may): no regex backtracking
        # over a long hostile line.
        parts = line.strip().rsplit(" ", 2)
        well_formed = len(parts) == 3 and parts[0].startswith("{") and parts[0].endswith("}") \
            and _TIME.match(parts[2]) is not None
        labels = _labels(parts[0][1:-1]) if well_formed else None
        if labels is None or "__name__" not in labels:
            raise UserError(f"{name} line {number} is not a `promtool tsdb dump` sample ({line.strip()[:80]!r})",
                            "give the dump as promtool wrote it (classic histograms only), or a query_range JSON")
        metric = labels.pop("__name__")
        inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
        out.append(f"{metric}{{{inner}}} {parts[1]} {parts[2]}\n")
    return "".join(out)


def _labels(text: str) -> dict[str, str] | None:
    labels, at = {}, 0
    while at < len(text):
        match = _LABEL.match(text, at)
        if not match:
            return None
        labels[match.group(1)] = match.group(2)  # still escaped: Go's \" \\ \n are the text format's too
        at = match.end()
    return labels
