"""One window grammar: every form selects the requests it names (known phases and t0), old replay forms map
onto it, and a bad form is one line naming the problem and the fix."""

from __future__ import annotations

import re

import pytest

from causalsre.errors import UserError
from causalsre.windows import legacy_replay_window, parse_window, run_offsets
from tests.cli.conftest import one_error_line


@pytest.fixture
def con(synthetic_db):
    from causalsre.telemetry import connect_readonly

    con = connect_readonly(synthetic_db)
    yield con
    con.close()


def _ids(window, con) -> set:
    sql, params = window.where()
    return {r[0] for r in con.execute(f"SELECT request_id FROM request_metrics WHERE {sql}", params).fetchall()}


def test_every_form_selects_the_same_requests_as_its_equivalent(con):
    incident = _ids(parse_window("phase:incident", con), con)
    assert incident and incident == _ids(parse_window("phase:incident@synthetic", con), con)
    # the incident phase is seconds 30..60 after the run's t0 (2026-01-01T00:00Z)
    assert _ids(parse_window("+30:+60@synthetic", con), con) == incident
    assert _ids(parse_window("2026-01-01T00:00:30Z/2026-01-01T00:01:00Z", con), con) == incident
    assert _ids(parse_window("+30:+60", con, run="synthetic"), con) == incident
    assert _ids(parse_window("phase:incident", con, run="synthetic"), con) == incident
    whole = _ids(parse_window("run:synthetic", con), con)
    assert incident < whole and whole == _ids(parse_window("+0:+60@synthetic", con), con)
    assert len(_ids(parse_window("+30.5:+31.5@synthetic", con), con)) < len(incident)


def test_run_offsets_give_a_replay_its_seconds(con):
    assert run_offsets(parse_window("+10:+40@synthetic", con), con) == ("synthetic", None, 10.0, 40.0)
    assert run_offsets(parse_window("phase:incident@synthetic", con), con)[:2] == ("synthetic", "incident")
    run, phase, start, end = run_offsets(parse_window("2026-01-01T00:00:30Z/2026-01-01T00:01:00Z", con), con)
    assert (run, phase, start, end) == ("synthetic", None, 30.0, 60.0)
    assert run_offsets(parse_window("run:synthetic", con), con)[2:] == (0.0, 60.0)  # one second past the last


@pytest.mark.parametrize("old,new", [
    ("incident", "phase:incident"), ("10:40", "+10:+40"), ("1.5:2", "+1.5:+2"),
    ("phase:incident@r", "phase:incident@r"), ("+1:+2@r", "+1:+2@r"), ("1:x", "1:x"), ("run:r", "run:r"),
])
def test_replay_aliases_map_onto_the_grammar(old, new):
    assert legacy_replay_window(old) == new


@pytest.mark.parametrize("text,run,fragment", [
    ("+10:+40", None, "names no run"),
    ("+40:+10@synthetic", None, "ends before it starts"),
    ("+10:40@synthetic", None, "is not +S:+E@<run>"),
    ("+10:+40@nope", None, "not in the database"),
    ("+10:+40@synthetic", "other", "but --run is"),
    ("phase:incident@", None, "names no run after @"),
    ("+500:+600@synthetic", None, "holds no requests"),
    ("incident", None, "not understood"),
])
def test_bad_windows_name_the_problem_and_the_fix(con, text, run, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)) as info:
        parse_window(text, con, run=run)
    assert info.value.fix  # every refusal says what to write instead


def test_the_new_form_works_from_the_cli_and_a_bad_one_exits_2(synthetic_db, cli):
    code, out, err = cli("graph", "check", "--db", synthetic_db, "--window", "+30:+60@synthetic", "--json")
    assert code in (0, 1) and '"rows"' in out  # 1: this data contradicts the default graph (test_exit_codes)
    import json

    assert json.loads(out)["rows"] > 0
    code, out, err = cli("graph", "check", "--db", synthetic_db, "--window", "+30:+60")
    assert code == 2 and out == ""
    assert "names no run" in one_error_line(err) and "+S:+E@RUN" in err


def test_run_id_plus_offsets_is_the_same_window_as_offsets_at_run(con):
    incident = _ids(parse_window("phase:incident", con), con)
    assert _ids(parse_window("run:synthetic+30:+60", con), con) == incident
    assert _ids(parse_window("run:+30:+60", con, run="synthetic"), con) == incident  # the id from --run
    assert _ids(parse_window("2026-01-01T00:00:30Z/2026-01-01T00:01:00Z@synthetic", con), con) == incident
    assert run_offsets(parse_window("run:synthetic+10.5:+40", con), con) == ("synthetic", None, 10.5, 40.0)


HUGE = "9" * 400  # float() makes it inf; an int() of it would exceed Python's digit limit


ISO = "2026-01-01T00:00:30Z/2026-01-01T00:01:00Z"
# refusal -> the spellings that get it (no --run)
HOSTILE = {
    "names no run": ["run:", "run:+1:+2"],
    "ends before it starts": ["run:abc+1:+0", "run:synthetic+5:+2", "+5:+2@r", f"run:synthetic+{HUGE}:+1"],
    "is not run:<id>+S:+E": ["run:synthetic+-5:+2", "run:synthetic+5:+-2", "run:synthetic+nan:+5",
                             "run:synthetic+0:+inf", "run:synthetic+1e3:+2e3", "run:synthetic+1:+2@other"],
    "is not +S:+E@<run>": ["+-5:+2@synthetic", "+nan:+nan@synthetic"],
    "not understood": ["-5:+2@synthetic"],
    "ends too far": [f"run:synthetic+0:+{HUGE}", f"+0:+{HUGE}@synthetic", "run:synthetic+0:+4000000000"],
    # no +E: the whole text is a run id, and an unknown one
    "known runs: synthetic": ["run:nope+1:+2", "run:abc+1:2", f"{ISO}@nope"],
    "names no run after @": [f"{ISO}@"],
}
WITH_RUN = [("run:synthetic+1:+2", "other", "but --run is"), ("phase:incident", "nope", "known runs: synthetic"),
            ("+1:+2", " ", "--run is empty")]


@pytest.mark.parametrize("text,run,fragment", [(text, None, fragment) for fragment, texts in HOSTILE.items()
                                               for text in texts] + WITH_RUN)
def test_hostile_run_spellings_are_one_line_refusals(con, text, run, fragment):
    with pytest.raises(UserError, match=re.escape(fragment)) as info:
        parse_window(text, con, run=run)
    assert info.value.fix and "\n" not in info.value.one_line()


@pytest.mark.parametrize("text,run,scoped", [
    ("+1:+2", "r", "+1:+2@r"), ("phase:incident", "r", "phase:incident@r"), ("run:", "r", "run:r"),
    ("run:+1:+2", "r", "run:r+1:+2"), ("a/b", "r", "a/b@r"), ("+1:+2@r", "r", "+1:+2@r"),
    ("run:r+1:+2", "r", "run:r+1:+2"), ("phase:x", None, "phase:x"), ("nonsense", "r", "nonsense"),
])
def test_scope_window_names_the_run_in_the_text(text, run, scoped):
    from causalsre.windows import scope_window

    assert scope_window(text, run) == scoped


def test_scope_window_refuses_a_window_of_another_run():
    from causalsre.windows import scope_window

    with pytest.raises(UserError, match="but --run is"):
        scope_window("phase:incident@a", "b")
