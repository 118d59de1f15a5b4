"""Round 10 at the times a user writes: leap seconds, zone names, and other spellings of ISO 8601.

Before: a leap second (``2016-12-31T23:59:60Z``) in a requests file or an events file was "cannot parse ... as a
time (use ISO 8601 ...)" of a time that is ISO 8601, and as ``--at`` "check the month, the day, ...". A zone
written by name (``Europe/Berlin``, ``CEST``) got the same generic words. Times pandas' ISO parser does not read
but that say one instant were refused too: a trailing ``UTC`` (``2026-01-31 12:00:00 UTC``, Go's ``... +0000
UTC``; the mixed-offset check already counted UTC as an offset), a lower-case ``t``/``z`` and a comma before
the fraction (ISO 8601 allows both). Now the first two are refused naming the problem and the text to write,
and the others are read as the instant they say.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from causalsre.cli.main import main
from tests.badinput.conftest import refused

HEADER = "arrival_time,ttft_s,e2e_s,prompt_tokens,output_tokens,status\n"
SUITE = "datasets/cpu-tiny/suite.duckdb"
SLO = "models/slos/llm-serving.yaml"

REFUSED = [  # (id, time, fragment, fix)
    ("leap-second", "2016-12-31T23:59:60Z", "is a leap second (:60)", "2016-12-31T23:59:59.999999Z"),
    ("leap-second-fraction", "2016-12-31 23:59:60.5+00:00", "is a leap second", "2016-12-31 23:59:59.999999+00:00"),
    ("zone-name", "2026-03-29 02:30:00 Europe/Berlin", "names its time zone", "write the UTC offset instead"),
    ("zone-bracket", "2026-03-29T02:30:00+02:00[Europe/Berlin]", "names its time zone", "write the UTC offset"),
    ("zone-abbreviation", "2026-03-29T02:30:00 CEST", "names its time zone", "convert to UTC and write Z"),
]


def _csv(tmp_path, *times: str) -> str:
    path = tmp_path / "requests.csv"
    path.write_text(HEADER + "".join(f'"{t}",0.2,1.2,100,11,ok\n' for t in times))
    return str(path)


@pytest.mark.parametrize("case_id, text, fragment, fix", REFUSED, ids=[c[0] for c in REFUSED])
def test_a_requests_file_with_a_leap_second_or_a_zone_name_says_what_to_write(case_id, text, fragment, fix,
                                                                               tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    err = refused(["db", "import", "requests", _csv(tmp_path, "2016-12-31T23:59:59Z", text), "--db", str(db)],
                  f"column arrival_time row 2: {text!r} {fragment}", capsys)
    assert fix in err and "cannot parse" not in err, err
    assert not db.exists()


@pytest.mark.parametrize("case_id, text, fragment, fix", REFUSED, ids=[c[0] for c in REFUSED])
def test_an_events_file_and_at_say_the_same(case_id, text, fragment, fix, tmp_path, capsys):
    events = tmp_path / "events.csv"
    events.write_text(f'time,key,value,kind\n"{text}",max_num_seqs,4,config\n')
    err = refused(["db", "import", "events", str(events), "--db", str(tmp_path / "e.duckdb")], fragment, capsys)
    assert fix in err, err
    err = refused(["slo", "report", "--db", SUITE, "--slo", SLO, "--at", text], f"--at {text!r} {fragment}", capsys)
    assert fix in err, err


SPELLINGS = [  # (id, text, the instant it says, UTC)
    ("utc-word", "2026-03-29 02:30:00 UTC", "2026-03-29T02:30:00"),
    ("gmt-word", "2026-03-29T02:30:00GMT", "2026-03-29T02:30:00"),
    ("go-offset-and-utc", "2026-03-29 02:30:00 +0100 UTC", "2026-03-29T01:30:00"),
    ("lower-case-t-z", "2026-03-29t02:30:00z", "2026-03-29T02:30:00"),
    ("comma-fraction", "2026-03-29T02:30:00,25Z", "2026-03-29T02:30:00.25"),
]


@pytest.mark.parametrize("case_id, text, instant", SPELLINGS, ids=[c[0] for c in SPELLINGS])
def test_other_iso_spellings_are_read_as_the_instant_they_say(case_id, text, instant, tmp_path, capsys):
    db = tmp_path / "t.duckdb"
    assert main(["db", "import", "requests", _csv(tmp_path, "2026-03-29T00:00:00Z", text), "--db", str(db)]) == 0, \
        capsys.readouterr().err
    with duckdb.connect(str(db), read_only=True) as con:
        gaps = [n for (n,) in con.execute("SELECT scheduled_arrival_ns FROM requests ORDER BY 1").fetchall()]
    assert pd.Timestamp("2026-03-29T00:00:00") + pd.Timedelta(gaps[1] - gaps[0], "ns") == pd.Timestamp(instant)
    code = main(["slo", "report", "--db", SUITE, "--slo", SLO, "--at", text])
    assert code == 0, capsys.readouterr().err
