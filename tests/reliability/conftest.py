"""The reliability tests reuse the bad-input world (a fresh copy of real databases and specs per test)."""

from tests.badinput.conftest import world, world_template  # noqa: F401  (fixtures)
