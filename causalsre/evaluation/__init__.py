"""Evaluations that cannot be tuned to: generated scenario suites and their scoring.

``generate_suite`` draws and records a fresh suite (:mod:`.generate`); ``score_suite`` runs the postmortem on
any suite folder and scores it (:mod:`.score`).
"""
