"""Moved to :mod:`causalsre.evaluation.score` (scoring of any scenario suite); re-exported for old imports."""

from causalsre.evaluation.score import evaluate_dataset, find_datasets, names_a_cause, summarize  # noqa: F401
