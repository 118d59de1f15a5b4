"""The one exception type for problems a user can fix, defined where the engine can reach it.

The engine depends on nothing of ``causalsre``; ``causalsre.errors`` re-exports this same class, so the
CLI's single ``except UserError`` catches errors raised by the engine, the harness and the analysis alike.
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
