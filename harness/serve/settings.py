"""What `causalsre serve` runs: the engine section of a harness run config plus the server's own limits.

A CONFIG.toml for serve is a harness run config (docs/harness.md): its ``[engine]`` section sets the engine
and its ``name`` names the server session's ``runs`` row; the workload and fault sections are ignored (the
load comes from clients). An optional ``[serve]`` section sets the limits below; command-line flags override
both.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from causalsre.errors import UserError
from causalsre.safeio import load_toml, regular_file
from harness.config import EngineSection, GovernorSection, RunConfig, did_you_mean, parse_run_config


INT32_MAX = 2**31 - 1  # max_tokens lands in the telemetry's INTEGER columns


class ServeSection(BaseModel):
    """Server limits. Defaults keep one request from holding the engine for long on a CPU.

    Strict types (TOML has them): ``max_tokens_limit = "5"`` and ``= true`` were read as 5 and 1; and bounded
    above, so a typo of many digits is refused rather than served as a limit of 10^20 tokens or bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    model_name: str | None = Field(None, min_length=1, max_length=200)   # default: "causalsre-<preset>"
    default_max_tokens: int = Field(16, ge=1, le=INT32_MAX)        # OpenAI's default for /v1/completions
    max_tokens_limit: int = Field(1024, ge=1, le=INT32_MAX)        # larger max_tokens -> 400
    max_body_bytes: int = Field(1 << 20, ge=1024, le=1 << 30)      # larger request bodies -> 413 (at most 1 GiB)
    max_in_flight: int | None = Field(None, ge=1, le=INT32_MAX)    # a cap on requests in the engine (default: its own bounds)
    retry_after_s: int = Field(1, ge=1, le=3600)                   # the Retry-After header of a 429
    flush_interval_s: float = Field(0.75, gt=0, le=60, allow_inf_nan=False)  # telemetry flush: SIGKILL loses at most this


class ServeSettings(BaseModel):
    """Everything a server needs, validated; built by :func:`load_serve_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "serve"
    engine: EngineSection = EngineSection()
    serve: ServeSection = ServeSection()
    governor: GovernorSection | None = None   # the CONFIG's tiers, for the engine's policy (edf, budget, vtc)
    api_key: str | None = None

    def governor_config(self):
        """The engine's GovernorConfig, or None without a [governor] section (as RunConfig.governor_config)."""
        from harness.engine.governor.config import GovernorConfig

        return None if self.governor is None else GovernorConfig.from_dict(self.governor.model_dump())

    @property
    def model_name(self) -> str:
        return self.serve.model_name or f"causalsre-{self.engine.model}"

    @property
    def max_in_flight(self) -> int:
        # The most requests in the engine at once: an explicit cap (checked by the engine thread when it
        # admits, loop.EngineLoop._admit), else what the engine's own bounds allow, every seat plus its queue.
        return self.serve.max_in_flight or (self.engine.max_num_seqs + self.engine.max_queue_len)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", exclude={"api_key"})   # the key is a secret: never in the DB


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown key{did_you_mean(ServeSettings, err['loc'])}"
    return f"{where}: {err['msg']} (got {str(err.get('input'))[:40]!r})"


_TIER_FIX = "give each [[governor.tiers]] a name, its tenants and its SLO (objective, ttft_s and/or tpot_s)"


def check_serve_tiers(governor: GovernorSection, where: str) -> None:
    """What a served governor must say (engine or gateway): tiers, each with tenants and a stated SLO.

    The governor's own checks accept all three holes, each of which made a server govern by nothing the
    operator wrote: no tiers (every tenant in the implicit default tier, nothing protected), a tier with no
    tenants (it never matches a request), and a tier with no objective or thresholds (it silently got
    99 % / 1 s / 250 ms).
    """
    if not governor.tiers:
        raise UserError(f"{where}: [governor] lists no tiers", _TIER_FIX)
    for tier in governor.tiers:
        given = tier.model_fields_set
        if not tier.tenants and tier.name != "default":
            raise UserError(f"{where}: tier '{tier.name}' lists no tenants",
                            "list its tenants, or name it 'default' to set the tier of unlisted tenants")
        if "objective" not in given or not given & {"ttft_s", "tpot_s"}:
            missing = "objective" if "objective" not in given else "ttft_s or tpot_s"
            raise UserError(f"{where}: tier '{tier.name}' states no SLO ({missing} missing)", _TIER_FIX)


def load_serve_settings(config_path: str | Path | None = None, *, model_name: str | None = None,
                        max_queue: int | None = None, api_key: str | None = None,
                        overrides: dict | None = None, engine_overrides: dict | None = None) -> ServeSettings:
    """Settings from an optional CONFIG.toml and the command-line flags (flags win).

    ``overrides`` and ``engine_overrides`` replace keys of the [serve] and [engine] sections.
    """
    name, engine, serve, governor = "serve", {}, {}, None
    if config_path is not None:
        path = Path(config_path)
        regular_file(path, what="config file")  # a folder or FIFO says what it is, not "does not exist"
        data = load_toml(path, what="config file")  # bounded size, UTF-8, nesting (deep arrays overflowed tomllib)
        serve = data.pop("serve", {})
        if not isinstance(serve, dict):
            raise UserError(f"bad serve config {path}: [serve] must be a table", "see docs/serve.md")
        misspelt = [k for k in data if k != "serve" and k not in RunConfig.model_fields
                    and difflib.get_close_matches(k, ["serve"], cutoff=0.6)]
        if misspelt:  # the run config's check would call it unknown without naming the section meant
            raise UserError(f"bad serve config {path}: {misspelt[0]}: unknown key (did you mean 'serve'?)",
                            "see docs/serve.md")
        data.setdefault("name", path.stem)
        run_cfg: RunConfig = parse_run_config(data, source=str(path))
        name, engine, governor = run_cfg.name, run_cfg.engine.model_dump(), run_cfg.governor
        if governor is not None:
            check_serve_tiers(governor, f"bad serve config {path}")
    engine = dict(engine, **(engine_overrides or {}))
    if max_queue is not None:
        engine["max_queue_len"] = max_queue
    if model_name is not None:
        serve = dict(serve, model_name=model_name)
    serve = dict(serve, **(overrides or {}))
    if api_key is not None and not api_key.strip():
        raise UserError("--api-key is empty", "pass a non-empty key, or leave the flag out")
    try:
        settings = ServeSettings(name=name, engine=engine, serve=serve, governor=governor, api_key=api_key)
    except ValidationError as exc:
        raise UserError(f"bad serve settings: {_first_error(exc)}", "see docs/serve.md") from None
    s = settings.serve
    if s.default_max_tokens > s.max_tokens_limit:   # it was clipped to the limit without a word
        raise UserError(f"bad serve settings: default_max_tokens ({s.default_max_tokens}) is above max_tokens_limit "
                        f"({s.max_tokens_limit})", "lower default_max_tokens or raise max_tokens_limit")
    return settings
