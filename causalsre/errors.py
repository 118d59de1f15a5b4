"""The one exception type for problems a user can fix.

The CLI turns it into ``error: <problem> (<fix>)`` on one line with exit code 2, in one place
(:mod:`causalsre.cli.main`). Library code raises it for bad input; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Bad input from a user: a spec, graph, window, database, file or flag.

    ``problem`` says what is wrong, ``fix`` says what to do about it.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = " ".join(self.problem.split())
        if self.fix:
            text += f" ({' '.join(self.fix.split())})"
        return text
