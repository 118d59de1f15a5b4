-- 0003: metric samples scraped from a server (Prometheus /metrics, query_range) and operator events
-- (deploys, config pushes, scale events). Both belong to a run, so their *_ns share the run's clock.

-- One row per sample of one series. Names as Prometheus exposes them (e.g. vllm:num_requests_waiting);
-- a histogram is stored as its _bucket (with le in the labels), _sum and _count series, a counter under its
-- _total name. causalsre.telemetry.importers.mapping says which series stand for which graph node.
CREATE TABLE metric_samples (
    run_id                  VARCHAR NOT NULL,
    ts_ns                   BIGINT NOT NULL,       -- when the sample was taken (scrape or evaluation time)
    metric                  VARCHAR NOT NULL,      -- series name as exposed, e.g. vllm:kv_cache_usage_perc
    labels_json             VARCHAR NOT NULL DEFAULT '{}',  -- the series labels as a JSON object (le for buckets)
    value                   DOUBLE NOT NULL,       -- the sample value (finite; counters are cumulative)
    source                  VARCHAR                -- where it came from: scrape URL, file name or prometheus query_range
);

-- Things an operator did to the system, from the harness or `causalsre db import events`. The existing
-- events table is per request (request_id NOT NULL), so these get their own table.
CREATE TABLE operator_events (
    run_id                  VARCHAR NOT NULL,
    ts_ns                   BIGINT NOT NULL,       -- when it happened
    key                     VARCHAR NOT NULL,      -- what changed, e.g. max_num_seqs, deploy, replicas
    value                   VARCHAR,               -- the new value as text (numbers as written)
    kind                    VARCHAR,               -- deploy | config | scale | other
    source                  VARCHAR                -- where it came from: harness, or the imported file name
);
