-- 0004: control actions of the budget governor (harness.engine.governor), one row per transition: the
-- admission level, length-aware deferral on/off, batching depth, and each tier's final online counters.
-- Knob changes it makes are also in run_settings (the engine's live-config path), as any config push.
CREATE TABLE control_actions (
    run_id                  VARCHAR NOT NULL,
    ts_ns                   BIGINT NOT NULL,       -- when the governor decided (the run's clock)
    action                  VARCHAR NOT NULL,      -- shed_level | defer_long_on | defer_long_off | batching_depth | final_counters
    tier                    VARCHAR,               -- the tier whose state triggered it (NULL when healthy)
    reason                  VARCHAR,               -- page | budget | slack | healthy | tpot_burn=... | run_end | length_predictor
    short_burn              DOUBLE,                -- that tier's burn rate over the short window (1.0 = on budget)
    long_burn               DOUBLE,                -- over the long window
    budget_remaining        DOUBLE,                -- 1 - budget consumed so far in the run (negative: overspent)
    params_before           VARCHAR,               -- JSON: the parameters before (level, shed tiers, knobs)
    params_after            VARCHAR                -- JSON: after (final_counters: events, bad_events, budget_consumed)
);
