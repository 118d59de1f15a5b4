"""Round 8 at the notebook API (``import causalsre.api as cs``): types a Jupyter user passes.

Before: a string for a flag was truthy (``cs.postmortem(..., verify="no")`` ran the verification replays,
``timeline="no"`` drew the timeline); ``set={"max_num_seqs": True}`` came back in the CLI's words ("--set
max_num_seqs needs a number, not 'True' (write --set ...)"); ``at=date(...)`` and ``at=np.datetime64(...)``
were refused as "not a non-empty string". Now a flag must be a bool (numpy's too), a bool is never a knob's
value, and a date or datetime64 is an instant like a datetime.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

import causalsre.api as cs
from causalsre.errors import UserError
from tests.badinput.bad_files import GOOD_SLO, SUITE

pytestmark = pytest.mark.skipif(not SUITE.is_file(), reason="the shipped suite is not built")
WINDOWS = dict(baseline="phase:baseline@rate_surge-s0", incident="phase:incident@rate_surge-s0")


def _refused(call, fragment: str) -> None:
    with pytest.raises(UserError) as caught:
        call()
    message = caught.value.one_line()
    assert fragment in message and "\n" not in message and "--" not in message, message


@pytest.mark.parametrize("name", ["verify", "bayes", "progress"])
@pytest.mark.parametrize("value", ["no", 0, None, np.int64(1)])
def test_a_postmortem_flag_must_be_a_bool(name, value):
    _refused(lambda: cs.postmortem(SUITE, GOOD_SLO, **WINDOWS, pairs=100, **{name: value}),
             f"{name} must be True or False")


def test_slo_report_timeline_and_whatif_verify_must_be_bools():
    _refused(lambda: cs.slo_report(SUITE, GOOD_SLO, timeline="no"), "timeline must be True or False")
    _refused(lambda: cs.whatif(SUITE, GOOD_SLO, window=WINDOWS["incident"], set={"max_num_seqs": 8}, verify="yes"),
             "verify must be True or False")


@pytest.mark.parametrize("value", [True, np.bool_(False)])
def test_a_bool_is_not_a_knob_value(value):
    _refused(lambda: cs.whatif(SUITE, GOOD_SLO, window=WINDOWS["incident"], set={"max_num_seqs": value}),
             "is not knob -> one value (pass e.g. set={'max_num_seqs': 16})")


def test_an_instant_may_be_a_date_or_a_datetime64():
    text = cs.slo_report(SUITE, GOOD_SLO, at="2026-11-28T01:00:00Z", timeline=False).data
    for at in (np.datetime64("2026-11-28T01:00"), pd.Timestamp("2026-11-28T02:00", tz="Europe/Paris"),
               datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc), datetime(2026, 11, 28, 1)):
        assert cs.slo_report(SUITE, GOOD_SLO, at=at, timeline=False).data == text, at
    midnight = cs.slo_report(SUITE, GOOD_SLO, at="2026-11-28T00:00:00Z", timeline=False).data
    assert midnight != text  # the instant is used
    assert cs.slo_report(SUITE, GOOD_SLO, at=date(2026, 11, 28), timeline=False).data == midnight
    _refused(lambda: cs.slo_report(SUITE, GOOD_SLO, at=np.datetime64("NaT")), "at is NaT")
    _refused(lambda: cs.slo_report(SUITE, GOOD_SLO, at=1732752000), "a datetime or a date")
