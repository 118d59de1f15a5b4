"""`causalsre serve`: the harness's engine behind an OpenAI-compatible HTTP API (docs/serve.md).

``EngineLoop`` owns the engine thread, the telemetry writer and the metrics; ``create_app`` puts the FastAPI
routes over it; ``serve_forever`` binds a socket and runs uvicorn until SIGINT/SIGTERM.
"""

from harness.serve.settings import ServeSection, ServeSettings, load_serve_settings

__all__ = ["ServeSection", "ServeSettings", "load_serve_settings", "EngineLoop", "create_app", "bind",
           "serve_forever"]


def __getattr__(name: str):
    # The app pulls in FastAPI and the engine torch; import them on first use.
    if name == "EngineLoop":
        from harness.serve.loop import EngineLoop

        return EngineLoop
    if name == "create_app":
        from harness.serve.app import create_app

        return create_app
    if name in ("bind", "serve_forever"):
        from harness.serve import server

        return getattr(server, name)
    raise AttributeError(name)
