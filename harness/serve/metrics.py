"""Prometheus metrics under vLLM's names, so dashboards and tools written for vLLM read this server.

Names, types and buckets follow vLLM's ``vllm/v1/metrics/loggers.py`` (v0.6+): gauges sampled after every
engine step, counters and histograms observed when tokens and requests finish. Every series carries the
``model_name`` label. Each server gets its own registry (several servers may share a process in tests).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
               40.0, 80.0)
REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                   240.0, 480.0, 960.0, 1920.0, 7680.0)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServeMetrics:
    def __init__(self, model_name: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["model_name"]
        reg = self.registry

        def gauge(name, doc):
            return Gauge(name, doc, labels, registry=reg).labels(model_name)

        def counter(name, doc):
            return Counter(name, doc, labels, registry=reg).labels(model_name)

        def histogram(name, doc, buckets):
            return Histogram(name, doc, labels, buckets=buckets, registry=reg).labels(model_name)

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemptions from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        self._success = Counter("vllm:request_success", "Count of successfully processed requests.",
                                ["model_name", "finished_reason"], registry=reg)
        self.model_name = model_name
        self.ttft = histogram("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                              TTFT_BUCKETS)
        self.itl = histogram("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                             ITL_BUCKETS)
        self.e2e = histogram("vllm:e2e_request_latency_seconds",
                             "Histogram of e2e request latency in seconds.", REQUEST_BUCKETS)
        self.queue_time = histogram("vllm:request_queue_time_seconds",
                                    "Histogram of time spent in WAITING phase for request.", REQUEST_BUCKETS)

    def observe_step(self, num_running: int, num_waiting: int, kv_used: int, kv_total: int,
                     num_preemptions: int) -> None:
        self.running.set(num_running)
        self.waiting.set(num_waiting)
        self.kv_usage.set(kv_used / kv_total if kv_total else 0.0)
        if num_preemptions:
            self.preemptions.inc(num_preemptions)

    def observe_done(self, record, arrival_ns: int) -> None:
        """A finished request's latencies (seconds from the HTTP arrival, as vLLM measures them)."""
        if record.status in ("rejected", "error"):
            return   # never ran: vLLM does not count these either
        self.e2e.observe(max(0, record.finish_ns - arrival_ns) / 1e9)
        if record.first_scheduled_ns is not None:
            self.queue_time.observe(max(0, record.first_scheduled_ns - record.enqueue_ns) / 1e9)
        if record.first_token_ns is not None:
            self.ttft.observe(max(0, record.first_token_ns - arrival_ns) / 1e9)
        self.prompt_tokens.inc(record.prompt_tokens)
        if record.status == "ok":
            self._success.labels(self.model_name, "length").inc()
        elif record.status == "aborted":
            self._success.labels(self.model_name, "abort").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
