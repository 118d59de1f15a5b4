"""Real serving stacks the harness can start and drive as peers of its own engine (today: vLLM's CPU build).

Nothing here imports torch or vLLM: the peer runs in its own virtualenv (``.venv-vllm``, built by
``make peer-vllm``) and the harness talks to it over HTTP only.
"""
