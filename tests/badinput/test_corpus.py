"""Every bad input: exit code 2, one line naming the problem and the fix, no traceback, nothing changed."""

from __future__ import annotations

import pytest

from tests.badinput.cases import CASES, KNOWN_BUGS
from tests.badinput.conftest import run_cli


def resolve(argv: list[str], root) -> list[str]:
    out = []
    for arg in argv:
        if arg.startswith("{") and arg.endswith("}"):
            out.append(str(root / arg[1:-1]))
        else:
            out.append(arg)
    return out


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))


PARAMS = [pytest.param(*case, id=case[0], marks=[pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case[0]])]
                       if case[0] in KNOWN_BUGS else []) for case in CASES]


@pytest.mark.parametrize("case_id,argv,fragment", PARAMS)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(case_id, argv, fragment, world, capsys):
    if "{suite.duckdb}" in argv and not world.path("suite.duckdb").is_file():
        pytest.skip("datasets/cpu-tiny/suite.duckdb is absent")
    before = world.fingerprint()
    code, out, err = run_cli(resolve(argv, world.root), capsys)
    assert code == 2, (case_id, out, err)
    assert fragment.lower() in err.lower(), err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out
    assert world.fingerprint() == before
