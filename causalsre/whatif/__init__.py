"""What-if analysis on the causal graph: interventions, effects, recommendations and their verification.

Public API (heavy libraries are imported inside the functions):

    from causalsre.whatif.context import Context, parse_settings
    from causalsre.whatif.gcm_predict import GcmWhatIf          # GcmWhatIf.fit(table, view).bad_rate(window, {...})
    from causalsre.whatif.predict import predict, summarise     # {method: {burn_rate, low, high, bad_rate}}
    from causalsre.whatif.effect import estimate_effect         # DoWhy + pgmpy
    from causalsre.whatif.recommend import recommend
    from causalsre.whatif.verify import verify, intervened_config
    from causalsre.whatif.calibration import DEFAULT_CASES, evaluate_cases, score
    from causalsre.whatif.governor import resolve_governor, replay_with_tiers, recommend_governor  # policy=budget
    from causalsre.whatif.tiers import TierRule, tier_budgets                 # per-tier budgets as slo report
"""
