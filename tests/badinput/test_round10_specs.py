"""Round 10 at the SLO spec: a calendar start at a daylight-saving change, a time-slice method without slices.

Before: a calendar window's naive ``startTime`` that a daylight-saving change skips (02:30 on the night
Europe/Berlin goes from 02:00 to 03:00) or that happens twice (the night it goes back) was taken with one of
the offsets without a word, so the first period began an hour from what was written; `budgetingMethod:
Timeslices` without `timeSliceWindow` said "timeSliceWindow None is not a duration". Now both name the problem
and what to write; a start that exists, or one given with its offset, is still accepted.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from causalsre.slo.spec import load_slos
from tests.badinput.bad_files import GOOD_SLO
from tests.badinput.conftest import refused

BASE_SLO = GOOD_SLO.read_text()
ROLLING = "timeWindow: [{duration: 30d, isRolling: true}]"


def _calendar(start: str, zone: str = "Europe/Berlin", duration: str = "1d") -> str:
    return BASE_SLO.replace(ROLLING, f"timeWindow: [{{duration: {duration}, isRolling: false, calendar: "
                                     f"{{startTime: '{start}', timeZone: {zone}}}}}]")


CALENDAR = [  # (id, start, zone, fragment, fix)
    ("spring-gap", "2026-03-29 02:30:00", "Europe/Berlin", "does not exist in Europe/Berlin",
     "write a time that exists, e.g. 2026-03-29 03:30:00"),
    ("autumn-twice", "2026-10-25 02:30:00", "Europe/Berlin", "happens twice in Europe/Berlin",
     "2026-10-25T02:30:00+02:00 for the first time, 2026-10-25T02:30:00+01:00 for the second"),
    ("new-york-gap", "2026-03-08 02:15:00", "America/New_York", "does not exist in America/New_York",
     "2026-03-08 03:15:00"),
    ("lord-howe-half-hour", "2026-04-05 01:45:00", "Australia/Lord_Howe", "happens twice", "+11:00"),
]


@pytest.mark.parametrize("case_id, start, zone, fragment, fix", CALENDAR, ids=[c[0] for c in CALENDAR])
def test_a_calendar_start_at_a_daylight_saving_change_says_what_to_write(case_id, start, zone, fragment, fix,
                                                                          tmp_path, capsys):
    path = tmp_path / "slo.yaml"
    path.write_text(_calendar(start, zone))
    err = refused(["slo", "check", str(path)], f"calendar.startTime {start} {fragment}", capsys)
    assert fix in err, err


@pytest.mark.parametrize("start, zone", [("2026-03-29 03:30:00", "Europe/Berlin"),
                                         ("2026-03-29T02:30:00+01:00", "Europe/Berlin"),
                                         ("2026-10-25T02:30:00+01:00", "Europe/Berlin"),
                                         ("2026-03-29 02:30:00", "UTC")])
def test_a_start_that_exists_or_has_its_offset_still_loads(start, zone, tmp_path):
    path = tmp_path / "slo.yaml"
    path.write_text(_calendar(start, zone))
    window = load_slos(path)[0].window
    assert window.calendar_start.replace(tzinfo=None) == datetime.fromisoformat(start).replace(tzinfo=None)


@pytest.mark.parametrize("method", ["Timeslices", "RatioTimeslices"])
def test_a_time_slice_method_without_a_slice_window_says_to_add_one(method, tmp_path, capsys):
    path = tmp_path / "slo.yaml"
    path.write_text(BASE_SLO.replace("budgetingMethod: Occurrences", f"budgetingMethod: {method}"))
    err = refused(["slo", "check", str(path)], f"budgetingMethod {method} needs a timeSliceWindow", capsys)
    assert "add e.g. timeSliceWindow: 5m" in err and "None" not in err, err
