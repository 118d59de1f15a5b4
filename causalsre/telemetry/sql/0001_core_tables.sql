-- 0001: the core telemetry tables. All *_ns columns are integer nanoseconds on one monotonic clock,
-- relative to the run's t0 (runs.started_at is the wall-clock time of t0, UTC).

CREATE TABLE runs (
    run_id                  VARCHAR PRIMARY KEY,   -- unique id of a harness run or an imported batch
    kind                    VARCHAR NOT NULL,      -- harness | import-requests | import-vllm-bench
    name                    VARCHAR,               -- human label (scenario or config name, or source file name)
    started_at              TIMESTAMP NOT NULL,    -- wall-clock time (UTC) of t0
    finished_at             TIMESTAMP,             -- wall-clock time (UTC) when the run ended; NULL while running
    status                  VARCHAR NOT NULL,      -- running | complete | incomplete
    seed                    BIGINT,                -- the seed every random choice of the run derives from
    model_preset            VARCHAR,               -- engine model size preset
    device                  VARCHAR,               -- cpu | cuda
    dtype                   VARCHAR,               -- float32 | bfloat16 | float16
    num_threads             INTEGER,               -- torch intra-op threads
    max_num_seqs            INTEGER,               -- scheduler: most sequences in one step
    max_num_batched_tokens  INTEGER,               -- scheduler: token budget per step
    enable_chunked_prefill  BOOLEAN,               -- scheduler: prefill may be split into chunks
    chunk_size              INTEGER,               -- scheduler: largest prefill chunk, tokens
    policy                  VARCHAR,               -- scheduler: fcfs | priority | sjf
    batching_mode           VARCHAR,               -- scheduler: decode_first | prefill_first
    num_kv_blocks           INTEGER,               -- KV cache: number of blocks (the memory knob)
    block_size              INTEGER,               -- KV cache: tokens per block
    max_queue_len           INTEGER,               -- admission control: waiting-queue bound
    request_timeout_s       DOUBLE,                -- per-request timeout, seconds
    arrival_process         VARCHAR,               -- workload: poisson | gamma | constant | closed | onoff | ramp | trace | import
    arrival_rate            DOUBLE,                -- workload: mean requests per second
    burstiness              DOUBLE,                -- workload: gamma shape (1 = Poisson)
    hardware_json           JSON,                  -- description of the machine (cpu model, gpu, memory, torch version; speed_probe: ms per decode and prefill step of a fixed mini-workload)
    config_json             JSON NOT NULL,         -- the full configuration the run used, as given
    CHECK (status IN ('running', 'complete', 'incomplete'))
);

CREATE TABLE requests (
    run_id                  VARCHAR NOT NULL,
    request_id              BIGINT NOT NULL,       -- unique within the run
    tenant                  VARCHAR,               -- tenant or client name
    priority                INTEGER,               -- priority class (lower = more important)
    prompt_tokens           INTEGER,               -- input length
    target_output_tokens    INTEGER,               -- output length the request asked for
    output_tokens           INTEGER,               -- tokens actually emitted
    scheduled_arrival_ns    BIGINT,                -- when the workload meant the request to arrive
    enqueue_ns              BIGINT,                -- when the engine queued it
    first_scheduled_ns      BIGINT,                -- first step that worked on it
    first_token_ns          BIGINT,                -- first output token
    last_token_ns           BIGINT,                -- last output token
    finish_ns               BIGINT,                -- finished, rejected, timed out or aborted
    status                  VARCHAR NOT NULL,      -- ok | timeout | rejected | aborted | error
    finish_reason           VARCHAR,               -- length | stop | queue_full | timeout | abort | error text
    num_preemptions         INTEGER NOT NULL DEFAULT 0,  -- times the request was preempted (recomputed)
    attributes              JSON,                  -- further per-request factors (imported columns, e.g. model, gpu_type)
    PRIMARY KEY (run_id, request_id),
    CHECK (status IN ('ok', 'timeout', 'rejected', 'aborted', 'error'))
);

CREATE TABLE tokens (
    run_id                  VARCHAR NOT NULL,
    request_id              BIGINT NOT NULL,
    token_index             INTEGER NOT NULL,      -- 0 = first output token
    step_id                 BIGINT,                -- engine step that produced it
    emitted_ns              BIGINT NOT NULL        -- when the token was emitted
);

CREATE TABLE steps (
    run_id                  VARCHAR NOT NULL,
    step_id                 BIGINT NOT NULL,
    start_ns                BIGINT NOT NULL,       -- step start
    end_ns                  BIGINT NOT NULL,       -- step end (tokens emitted)
    schedule_ns             BIGINT,                -- time spent scheduling (duration)
    forward_ns              BIGINT,                -- time spent in the model forward (duration)
    num_prefill_seqs        INTEGER NOT NULL,      -- sequences with prefill (or a prefill chunk) in the step
    num_prefill_tokens      INTEGER NOT NULL,      -- prompt tokens processed in the step
    num_decode_seqs         INTEGER NOT NULL,      -- sequences decoding one token in the step
    num_decode_tokens       INTEGER NOT NULL,      -- decode tokens in the step
    num_waiting             INTEGER NOT NULL,      -- queue length after scheduling
    num_running             INTEGER NOT NULL,      -- sequences holding KV blocks after scheduling
    num_kv_blocks_used      INTEGER NOT NULL,      -- KV blocks allocated after the step
    num_kv_blocks_total     INTEGER NOT NULL,      -- KV blocks in the pool
    num_preemptions         INTEGER NOT NULL,      -- preemptions in this step
    PRIMARY KEY (run_id, step_id)
);

CREATE TABLE events (
    run_id                  VARCHAR NOT NULL,
    request_id              BIGINT NOT NULL,
    event_type              VARCHAR NOT NULL,      -- queued | scheduled | preempted | first_token | finished | rejected | timeout | aborted
    ts_ns                   BIGINT NOT NULL,       -- when it happened
    step_id                 BIGINT
);

CREATE TABLE faults (
    run_id                  VARCHAR NOT NULL,
    fault_id                INTEGER NOT NULL,      -- unique within the run
    kind                    VARCHAR NOT NULL,      -- cpu_contention | step_delay | fewer_threads | kv_shrink | config_push | rate_surge | ...
    family                  VARCHAR NOT NULL,      -- batching | hardware | workload
    factor                  VARCHAR NOT NULL,      -- the causal-graph factor this fault changes (ground truth)
    start_ns                BIGINT NOT NULL,       -- fault starts
    end_ns                  BIGINT,                -- NULL: until the end of the run
    params                  JSON,                  -- the fault's parameters (e.g. threads, delay, new knob value)
    PRIMARY KEY (run_id, fault_id)
);
