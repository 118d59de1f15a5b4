"""Evaluations that cannot be tuned to: generated scenario suites and their scoring.

``generate_suite`` draws and records a fresh suite (:mod:`.generate`, ranges in :mod:`.ranges`);
``score_suite`` runs the postmortem on any suite folder and scores it (:mod:`.score`), with
``names_a_cause`` the one rule for a false alarm on a control.
"""

from causalsre.evaluation.generate import generate_suite
from causalsre.evaluation.score import names_a_cause, score_suite

__all__ = ["generate_suite", "names_a_cause", "score_suite"]
