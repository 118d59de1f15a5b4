"""The one exception type for problems a user can fix, defined where the engine can reach it.

The engine depends on nothing of ``causalsre``; ``causalsre.errors`` re-exports this same class, so the
CLI's single ``except UserError`` catches errors raised by the engine, the harness and the analysis alike.
"""

from __future__ import annotations

# Echoed values (a 100,000-character flag, a path of a thousand folders, a parser's message quoting a whole
# line) are cut here, where every message is formed, so no caller can print one whole: a word over
# MAX_WORD characters keeps its head and tail, and the problem and the fix keep at most MAX_PART each.
MAX_WORD = 200
MAX_PART = 1000


def clip(text: str, *, max_word: int = MAX_WORD, max_len: int = MAX_PART) -> str:
    """``text`` on one line with long words and the whole cut in the middle, saying how much was cut."""
    words = []
    for word in text.split():
        if len(word) > max_word:
            keep = max_word // 2 - 10
            word = f"{word[:keep]}...[{len(word) - 2 * keep} chars]...{word[-keep:]}"
        words.append(word)
    line = " ".join(words)
    if len(line) > max_len:
        keep = max_len // 2 - 15
        line = f"{line[:keep]} ...[{len(line) - 2 * keep} chars cut]... {line[-keep:]}"
    return line


class UserError(ValueError):
    """Bad input from a user: a spec, graph, window, database, file or flag.

    ``problem`` says what is wrong, ``fix`` says what to do about it.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        text = clip(str(self.problem))
        if self.fix:
            text += f" ({clip(str(self.fix))})"
        return text
