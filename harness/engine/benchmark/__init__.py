"""``causalsre bench engine``: the engine against Hugging Face transformers on the same model and workload."""
