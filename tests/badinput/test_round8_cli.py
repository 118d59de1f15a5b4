"""Round 8 at the CLI: window and time options worded for the shell, not for the Python API.

Before: `slo report --at ''` said "at must be None or a non-empty string, not '' (pass e.g.
at='2026-03-01T10:00:00Z')" (the notebook API's check), `postmortem --baseline ''` "baseline must be a
non-empty string", `slo report --resolution ''` and `--run ''` the same; a window whose start equals its end
"ends before it starts"; `T24:00` "is not an ISO 8601 time" with a generic example. Now the flag is named with
the form it takes, an empty window says so, and 24:00, an impossible date (what is wrong with it), a 25-hour offset and epoch seconds
each get the text to write instead. Every refusal is exit 2 and one line; the database is unchanged.
"""

from __future__ import annotations

import pytest

from causalsre.errors import UserError
from causalsre.times import parse_instant
from tests.badinput.conftest import refused

_SLO = "{slo.yaml}"
_RUN = "rate_surge-s0"


def _argv(world, *argv: str) -> list[str]:
    places = {"{suite.duckdb}": str(world.path("suite.duckdb")), _SLO: str(world.path("slo.yaml"))}
    return [places.get(a, a) for a in argv]


EMPTY_FLAGS = [  # (id, argv, fragment): each value is '' or blank
    ("slo-at", ("slo", "report", "--db", "{suite.duckdb}", "--slo", _SLO, "--at", ""), "--at is empty (give an ISO"),
    ("slo-at-blank", ("slo", "report", "--db", "{suite.duckdb}", "--slo", _SLO, "--at", "  "), "--at is empty"),
    ("slo-resolution", ("slo", "report", "--db", "{suite.duckdb}", "--slo", _SLO, "--resolution", ""),
     "--resolution is empty (give a duration"),
    ("slo-run", ("slo", "report", "--db", "{suite.duckdb}", "--slo", _SLO, "--run", ""), "--run is empty (give a run"),
    ("postmortem-baseline", ("postmortem", "--db", "{suite.duckdb}", "--slo", _SLO, "--baseline", "",
                             "--incident", f"phase:incident@{_RUN}"), "--baseline is empty (give a window: START/END"),
    ("postmortem-incident", ("postmortem", "--db", "{suite.duckdb}", "--slo", _SLO, "--baseline",
                             f"phase:baseline@{_RUN}", "--incident", " "), "--incident is empty"),
    ("postmortem-slo-name", ("postmortem", "--db", "{suite.duckdb}", "--slo", _SLO, "--slo-name", "",
                             "--baseline", f"phase:baseline@{_RUN}", "--incident", f"phase:incident@{_RUN}"),
     "--slo-name is empty"),
    ("whatif-window", ("whatif", "--db", "{suite.duckdb}", "--slo", _SLO, "--window", "", "--set", "max_num_seqs=8"),
     "--window is empty (give a window"),
]


@pytest.mark.parametrize("case_id, argv, fragment", EMPTY_FLAGS, ids=[c[0] for c in EMPTY_FLAGS])
def test_an_empty_text_flag_is_named_as_the_flag(case_id, argv, fragment, world, capsys):
    before = world.fingerprint()
    err = refused(_argv(world, *argv), fragment, capsys)
    assert "must be None or" not in err and "pass e.g." not in err, err  # the Python API's wording
    assert world.fingerprint() == before


WINDOWS = [  # (id, window, fragment)
    ("empty-instants", "2026-11-28T00:50:00Z/2026-11-28T00:50:00Z", "is empty: start equals end (give an END after"),
    ("empty-same-instant-two-spellings", "2026-11-28T00:50:00Z/2026-11-28T01:50:00+01:00", "is empty: start equals"),
    ("empty-offsets", f"+10:+10@{_RUN}", "is empty: start equals end (give an end offset after the start"),
    ("empty-run-offsets", f"run:{_RUN}+5:+5", "is empty: start equals end"),
    ("reversed-still-says-reversed", "2026-11-28T00:54:00Z/2026-11-28T00:49:00Z", "ends before it starts"),
    ("midnight-24", "2026-11-28T00:50:00Z/2026-11-28T24:00:00Z",
     "writes midnight as 24:00, which is not a time of day (write the next day's 00:00: 2026-11-29T00:00:00Z)"),
]


@pytest.mark.parametrize("case_id, window, fragment", WINDOWS, ids=[c[0] for c in WINDOWS])
def test_window_wording(case_id, window, fragment, world, capsys):
    argv = _argv(world, "whatif", "--db", "{suite.duckdb}", "--slo", _SLO, "--window", window, "--set",
                 "max_num_seqs=8")
    before = world.fingerprint()
    refused(argv, fragment, capsys)
    assert world.fingerprint() == before


def test_slo_report_at_midnight_24_gets_the_next_day(world, capsys):
    argv = _argv(world, "slo", "report", "--db", "{suite.duckdb}", "--slo", _SLO, "--at", "2026-12-31T24:00+05:30")
    refused(argv, "write the next day's 00:00: 2027-01-01T00:00:00+05:30", capsys)


@pytest.mark.parametrize("text, fragment", [
    ("2026-11-28T24:00", "write the next day's 00:00: 2026-11-29T00:00:00Z"),
    ("2026-11-28 24:00:00.000Z", "2026-11-29T00:00:00Z"),
    ("2026-11-28T24:30Z", "is not an ISO 8601 time: hour must be in 0..23 (check the month"),
    ("2026-02-30T00:00Z", "is not an ISO 8601 time: day is out of range for month (check"),
    ("2026-13-01", "month must be in 1..12"),
    ("2026-11-28T10:00+25:00", "has a UTC offset of 24 hours or more (write an offset between -23:59 and +23:59"),
    ("1732752000", "is a number, not an ISO 8601 time (epoch seconds are not read here) (write it as "
                   "2024-11-28T00:00:00Z)"),
    ("28/11/2026", "is not an ISO 8601 time (write an ISO-8601 time such as"),
])
def test_an_instant_that_does_not_parse_says_what_to_write(text, fragment):
    with pytest.raises(UserError) as caught:
        parse_instant(text, what="--at")
    message = caught.value.one_line()
    assert fragment in message and "\n" not in message, message


def test_valid_instants_still_parse():
    assert parse_instant("2026-11-29T00:00:00Z").isoformat() == "2026-11-29T00:00:00"
    assert parse_instant("2026-11-28T23:59:59.999+00:00").day == 28
