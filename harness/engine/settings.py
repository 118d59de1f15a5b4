"""The engine's settings, declared once: type, default, bounds, and where each one goes.

Every other list of knobs is derived from :data:`ENGINE_SETTINGS`: the engine's own validation and
``LIVE_KNOBS`` (:mod:`harness.engine.config`), the harness's ``EngineSection`` and ``PUSHABLE_KNOBS``, the
fault injector's knobs and the ``runs`` row (through :mod:`harness.settings`), the what-if/replay mapping and
the analysis table's setting columns. Adding a knob is one entry here plus its edges in
``models/serving.yaml`` (a test fails until the graph has the node or excludes it with a reason).

Bounds are inclusive unless ``low_open``. They are where the engine stops being meaningful or safe on the
machines this project targets, not vLLM's limits: past them a typo (``1e9`` for ``1e3``) would allocate or run
for hours before failing, so it fails here with one line instead. Memory-sized settings are also checked
against the machine (:func:`harness.engine.config.EngineConfig.validate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.engine.errors import UserError

# fcfs, priority (vLLM's), sjf, vtc (virtual token counter), edf (TTFT deadline), budget (the governor);
# vtc, edf and budget read tiers from a GovernorConfig (harness.engine.governor), see docs/methods/governor.md.
POLICIES = ("fcfs", "priority", "sjf", "vtc", "edf", "budget")
GOVERNED_POLICIES = ("vtc", "edf", "budget")   # policies whose order comes from harness.engine.governor
TIERED_POLICIES = ("edf", "budget")            # ...of which these need [[governor.tiers]] (deadlines, budgets)
BATCHING_MODES = ("decode_first", "prefill_first")
DTYPES = ("float32", "bfloat16", "float16")
DEVICE_PATTERN = r"^(cpu|cuda(:[0-9]{1,2})?)$"   # cpu, cuda, cuda:N
TEXT_KINDS = ("choice", "device", "preset")      # stored as value_text in run_settings


@dataclass(frozen=True, slots=True)
class Setting:
    """One engine setting. ``graph`` is its node in the causal graph; None means excluded, with ``excluded``
    saying why. ``live``: ``Engine.update_config`` may change it while running; ``pushable``: a
    ``config_push`` fault may set it; ``fault_kinds``: other faults that change the same factor."""

    name: str
    kind: str                        # int | float | bool | choice | device | preset (a MODEL_PRESETS name)
    default: object
    family: str                      # batching | hardware | workload
    graph: str | None
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False           # low < value rather than low <= value
    choices: tuple[str, ...] = ()
    nullable: bool = False
    live: bool = False
    pushable: bool = False
    runs_column: str | None = None   # the column of ``runs`` holding its value at t0
    fault_kinds: tuple[str, ...] = ()
    excluded: str = ""

    @property
    def integral(self) -> bool:
        return self.kind == "int"

    def describe(self) -> str:
        """What a valid value looks like, for error messages."""
        if self.kind == "bool":
            text = "true or false"
        elif self.kind in ("choice", "preset") and self.choices:
            text = f"one of {', '.join(self.choices)}"
        elif self.kind == "device":
            text = "'cpu', 'cuda' or 'cuda:N'"
        elif self.kind == "preset":
            text = "a model preset name"
        else:
            noun = "an integer" if self.integral else "a number"
            text = f"{noun} in {'(' if self.low_open else '['}{_fmt(self.low)}, {_fmt(self.high)}]"
        return text + (" or None" if self.nullable else "")

    def check(self, value: object, *, coerce: bool = False) -> object:
        """``value`` if valid for this setting, else UserError. ``coerce`` accepts an integral float (8.0) for
        an integer and 0/1 for a boolean, as a command-line number would arrive, and numpy scalars (a value read
        from an analysis table); it returns the coerced value."""
        if coerce and hasattr(value, "item") and not isinstance(value, (str, bytes)):
            value = value.item()  # numpy scalar -> the Python number it holds
        if value is None:
            if self.nullable:
                return None
            raise self._error(value)
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if coerce and isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise self._error(value)
        if self.kind in TEXT_KINDS:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise self._error(value)
            if self.kind == "device" and not _is_device(value):
                raise self._error(value)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error(value)
        if not math.isfinite(value):
            raise self._error(value, "a finite number")
        if self.integral and not isinstance(value, int):
            if not (coerce and float(value).is_integer()):
                raise self._error(value)
            value = int(value)
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        if too_low:
            raise self._error(value)
        if self.high is not None and value > self.high:
            raise UserError(f"{self.name} must be {self.describe()}, got {value!r}",
                            f"set {self.name} to at most {_fmt(self.high)}")
        return value

    def _error(self, value: object, what: str | None = None) -> UserError:
        return UserError(f"{self.name} must be {what or self.describe()}, got {value!r}",
                         f"set {self.name} to {self.describe()}")


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "inf"
    return f"{int(bound):,}" if float(bound).is_integer() else f"{bound:g}"


def _is_device(value: str) -> bool:
    if value in ("cpu", "cuda"):
        return True
    prefix, _, index = value.partition(":")
    return prefix == "cuda" and index.isdigit() and len(index) <= 2


_B, _H = "batching", "hardware"
_LIVE = {"live": True, "pushable": True}

ENGINE_SETTINGS: tuple[Setting, ...] = (
    Setting("model", "preset", "tiny", _H, None, "model size preset", runs_column="model_preset",
            excluded="a different model is a different system: compare windows of one model"),
    Setting("device", "device", "cpu", _H, "device", "cpu or cuda (cuda:N)", runs_column="device"),
    Setting("dtype", "choice", "float32", _H, "dtype", "weights and activations", choices=DTYPES,
            runs_column="dtype"),
    Setting("num_threads", "int", 1, _H, "num_threads", "torch intra-op threads", low=1, high=256,
            runs_column="num_threads", fault_kinds=("fewer_threads",)),
    Setting("seed", "int", 0, "workload", None, "seed of the engine's weights and sampling", low=0,
            high=2**32 - 1, excluded="randomness, not a setting: runs differ in seed by design"),
    Setting("max_num_seqs", "int", 16, _B, "max_num_seqs", "most sequences in one step", low=1, high=65_536,
            runs_column="max_num_seqs", **_LIVE),
    Setting("max_num_batched_tokens", "int", 256, _B, "max_num_batched_tokens", "token budget per step",
            low=1, high=1_048_576, runs_column="max_num_batched_tokens", **_LIVE),
    Setting("enable_chunked_prefill", "bool", True, _B, "enable_chunked_prefill",
            "a prefill may be split over steps", runs_column="enable_chunked_prefill", **_LIVE),
    Setting("chunk_size", "int", 64, _B, "chunk_size", "largest prefill chunk, tokens", low=1, high=1_048_576,
            runs_column="chunk_size", **_LIVE),
    Setting("policy", "choice", "fcfs", _B, "policy", "scheduling order", choices=POLICIES,
            runs_column="policy", **_LIVE),
    Setting("batching_mode", "choice", "decode_first", _B, "batching_mode",
            "whether a step serves decodes or prefills first", choices=BATCHING_MODES,
            runs_column="batching_mode", **_LIVE),
    Setting("num_kv_blocks", "int", 256, _B, "num_kv_blocks", "KV cache size in blocks", low=1,
            high=16_777_216, runs_column="num_kv_blocks", fault_kinds=("kv_shrink",), **_LIVE),
    Setting("block_size", "int", 16, _B, "block_size", "tokens per KV block", low=1, high=1024,
            runs_column="block_size"),
    Setting("max_queue_len", "int", 64, _B, "max_queue_len", "admission control: waiting-queue bound", low=1,
            high=1_000_000, runs_column="max_queue_len", **_LIVE),
    Setting("request_timeout_s", "float", 30.0, _B, "request_timeout_s",
            "per-request timeout, seconds (None: no timeout)", low=0, low_open=True, high=86_400.0,
            nullable=True, runs_column="request_timeout_s", **_LIVE),
)

SETTINGS: dict[str, Setting] = {s.name: s for s in ENGINE_SETTINGS}
# Knobs that may change while the engine runs (a config push); the rest fix the model and its memory layout.
LIVE_KNOBS: tuple[str, ...] = tuple(s.name for s in ENGINE_SETTINGS if s.live)


# The governor's own parameters (the run TOML's [governor] section, harness.engine.governor.GovernorConfig).
# Not engine knobs: they are no graph nodes and never pushed; their values are in runs.config_json and every
# control action records the parameters it changed.
_G = {"family": "governor", "graph": None, "excluded": "a governor parameter: its actions are in control_actions"}
GOVERNOR_SETTINGS: tuple[Setting, ...] = (
    Setting("buffer_share", "float", 0.1, doc="share of max_num_seqs held for protected tiers", low=0.0,
            high=0.9, **_G),
    Setting("margin", "float", 0.25, doc="shed sheddable tiers when a protected tier's remaining budget is below",
            low=0.0, high=1.0, **_G),
    Setting("short_window_s", "float", 30.0, doc="short burn-rate window, seconds", low=0, low_open=True,
            high=86_400.0, **_G),
    Setting("long_window_s", "float", 300.0, doc="long burn-rate window, seconds", low=0, low_open=True,
            high=30 * 86_400.0, **_G),
    Setting("page_burn", "float", 14.4, doc="burn rate at which a page would fire (both windows)", low=0,
            low_open=True, high=1e6, **_G),
    Setting("min_short_events", "int", 10, doc="events a tier needs in the short window before its burn rate can "
            "trigger shedding", low=1, high=1_000_000, **_G),
    Setting("min_max_num_seqs", "int", 2, doc="lowest max_num_seqs the governor may set", low=1, high=65_536, **_G),
    Setting("max_max_num_seqs", "int", 32, doc="highest max_num_seqs the governor may set", low=1, high=65_536, **_G),
    Setting("min_batched_tokens", "int", 64, doc="lowest max_num_batched_tokens the governor may set", low=1,
            high=1_048_576, **_G),
    Setting("max_batched_tokens", "int", 512, doc="highest max_num_batched_tokens the governor may set", low=1,
            high=1_048_576, **_G),
)
TIER_SETTINGS: tuple[Setting, ...] = (
    Setting("criticality", "int", 0, doc="0 = most critical", low=0, high=1000, **_G),
    Setting("objective", "float", 0.99, doc="SLO target (good share)", low=0, low_open=True, high=0.999999, **_G),
    Setting("ttft_s", "float", 1.0, doc="good iff ttft <= ttft_s (and tpot, and finished ok)", low=0,
            low_open=True, high=86_400.0, **_G),
    Setting("tpot_s", "float", 0.25, doc="good iff tpot <= tpot_s", low=0, low_open=True, high=86_400.0, **_G),
    Setting("protected", "bool", False, doc="never shed", **_G),
    Setting("weight", "float", 1.0, doc="vtc weight (share of service)", low=0, low_open=True, high=1e6, **_G),
)
