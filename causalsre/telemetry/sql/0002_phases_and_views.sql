-- 0002: scenario phases, and the views that define every derived quantity once.

CREATE TABLE phases (
    run_id                  VARCHAR NOT NULL,
    name                    VARCHAR NOT NULL,      -- e.g. baseline, incident
    start_ns                BIGINT NOT NULL,       -- phase starts (inclusive)
    end_ns                  BIGINT NOT NULL,       -- phase ends (exclusive)
    PRIMARY KEY (run_id, name)
);

-- The value of every factor that can change during a run (knobs after a config push, threads, contention,
-- injected step delay, offered rate...), as a piecewise-constant timeline: a row holds from start_ns until
-- the next row of the same run and setting. Writers add one row per factor at t0 and one per change.
CREATE TABLE run_settings (
    run_id                  VARCHAR NOT NULL,
    setting                 VARCHAR NOT NULL,      -- factor name as in the causal graph, e.g. max_num_seqs
    start_ns                BIGINT NOT NULL,       -- the value holds from here
    value                   DOUBLE,                -- numeric value (booleans as 0/1)
    value_text              VARCHAR,               -- categorical value (policy, dtype, device)
    PRIMARY KEY (run_id, setting, start_ns)
);

CREATE VIEW settings_timeline AS
SELECT run_id, setting, start_ns,
       lead(start_ns) OVER (PARTITION BY run_id, setting ORDER BY start_ns) AS end_ns,  -- next change (NULL: until the end)
       value, value_text
FROM run_settings;

-- One row per request. Latencies are measured from the scheduled arrival (falling back to enqueue), so a
-- load generator that falls behind does not hide queueing (no coordinated omission). Failed, rejected and
-- timed-out requests stay in the view: they are bad events in every SLO denominator.
CREATE VIEW request_metrics AS
SELECT
    r.run_id,
    r.request_id,
    r.tenant,
    r.priority,
    p.name                                                          AS phase,       -- scenario phase the arrival falls in (NULL outside phases)
    r.prompt_tokens,
    r.target_output_tokens,
    r.output_tokens,
    r.status,
    r.finish_reason,
    r.num_preemptions,
    r.attributes,
    COALESCE(r.scheduled_arrival_ns, r.enqueue_ns)                  AS arrival_ns,  -- scheduled arrival, else enqueue
    make_timestamp(epoch_us(ru.started_at) + COALESCE(r.scheduled_arrival_ns, r.enqueue_ns) // 1000) AS arrival_ts,  -- arrival, wall clock (UTC)
    (r.first_scheduled_ns - COALESCE(r.scheduled_arrival_ns, r.enqueue_ns)) / 1e9          AS queue_s,  -- arrival to first scheduled, seconds
    (r.first_token_ns - COALESCE(r.scheduled_arrival_ns, r.enqueue_ns)) / 1e9              AS ttft_s,  -- time to first token from arrival, seconds
    CASE WHEN r.output_tokens > 1
         THEN (r.last_token_ns - r.first_token_ns) / 1e9 / (r.output_tokens - 1) END         AS tpot_s,  -- time per output token after the first (vLLM), seconds
    (r.finish_ns - COALESCE(r.scheduled_arrival_ns, r.enqueue_ns)) / 1e9                    AS e2e_s,  -- arrival to finish, seconds
    r.status = 'ok'                                                 AS is_ok  -- the request completed
FROM requests r
JOIN runs ru USING (run_id)
LEFT JOIN phases p
       ON p.run_id = r.run_id
      AND COALESCE(r.scheduled_arrival_ns, r.enqueue_ns) >= p.start_ns
      AND COALESCE(r.scheduled_arrival_ns, r.enqueue_ns) <  p.end_ns;

-- One row per gap between consecutive output tokens of a request (token_index >= 1).
CREATE VIEW inter_token_latency AS
SELECT run_id, request_id, token_index, step_id,
       (emitted_ns - prev_ns) / 1e9 AS itl_s  -- gap since the previous token of the request, seconds
FROM (
    SELECT run_id, request_id, token_index, step_id, emitted_ns,
           lag(emitted_ns) OVER (PARTITION BY run_id, request_id ORDER BY token_index) AS prev_ns
    FROM tokens
)
WHERE prev_ns IS NOT NULL;

-- One row per engine step with its derived quantities.
CREATE VIEW step_metrics AS
SELECT s.*,
       (s.end_ns - s.start_ns) / 1e9                                   AS duration_s,  -- step wall time, seconds
       s.num_prefill_seqs + s.num_decode_seqs                          AS batch_size,  -- sequences in the step
       s.num_prefill_tokens + s.num_decode_tokens                      AS num_batched_tokens,  -- tokens in the step
       s.num_kv_blocks_used::DOUBLE / NULLIF(s.num_kv_blocks_total, 0) AS kv_utilization  -- fraction of KV blocks in use
FROM steps s;
