"""The telemetry producer: an inference engine, workloads, sweeps and faults that write into the schema."""
