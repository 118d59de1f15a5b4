"""Importers for what a deployment already has: benchmark results, metric scrapes, traces, operator events.

One module per format, each a pure ``parse(files, ...) -> list[Batch]`` that validates everything before
anything is written; :func:`common.write_batches` writes a command's batches in one transaction.

* :mod:`.vllm_bench` - ``vllm bench serve --save-detailed`` JSON -> requests
* :mod:`.prometheus` - text exposition scrapes and ``query_range`` JSON -> metric_samples
* :mod:`.otel` - OTLP JSON traces (vLLM / GenAI semantic conventions) -> requests
* :mod:`.guidellm` - guidellm benchmark reports -> requests
* :mod:`.events` - operator events CSV -> operator_events (and run_settings for config changes)
* :mod:`.table` - any per-request CSV/Parquet with a column mapping and units -> requests
* :mod:`.mapping` - vLLM metric names -> graph nodes, and :func:`.mapping.metric_mediators`
"""
