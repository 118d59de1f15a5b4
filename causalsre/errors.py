"""The one exception type for problems a user can fix.

The CLI turns it into ``error: <problem> (<fix>)`` on one line with exit code 2, in one place
(:mod:`causalsre.cli.main`). Library code raises it for bad input; anything else is a bug and keeps
its traceback. The class lives in :mod:`harness.engine.errors` (the engine imports nothing of causalsre);
this is the same class, so ``except UserError`` here catches the engine's and the harness's errors too.

Messages are clipped where they are formed (:func:`clip`: a word over 200 characters keeps its head and tail,
the problem and the fix at most 1,000 characters each), so a hostile value is never echoed whole.
"""

from __future__ import annotations

from harness.engine.errors import UserError, clip

__all__ = ["UserError", "clip"]
