"""The engine's C kernel for paged decode attention on the CPU, compiled on first use and loaded with ctypes.

Why C and ctypes rather than a torch extension: the kernel is one plain C function over float pointers, so
gcc builds it in about a second (a torch C++ extension takes a minute), and nothing is needed beyond the
compiler the machine already has for PyTorch's and PyTensor's own builds. It is built with ``-march=native``
for the machine it runs on, cached under ``$CAUSALSRE_CACHE_DIR`` (default ``~/.cache/causalsre``) keyed by
the source, the flags and the CPU's feature flags, so a cache shared between different CPUs never loads a
build with instructions the CPU lacks.

Anything missing (no compiler, a failed build, ``CAUSALSRE_ENGINE_KERNELS=0``) falls back to the pure-torch
attention, which gives the same tokens; :func:`status` says which one runs and why.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

SOURCES = tuple(Path(__file__).parent / "csrc" / name for name in ("paged_attention.c", "cpu_ops.c", "decoder_stack.c"))
# measured (csrc/cpu_ops.c, one thread, CPU time): the panel kernel took 0.65-0.9x oneDNN's CPU time at 1-96
# rows; longer prefill chunks keep oneDNN's cache-blocked GEMM, which reuses each weight over many rows
PANEL_LINEAR_MAX_ROWS = 64
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-shared", "-fPIC"]
DISABLE_ENV = "CAUSALSRE_ENGINE_KERNELS"

_lib: ctypes.CDLL | None = None
_status: str | None = None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_dir() -> Path:
    root = os.environ.get("CAUSALSRE_CACHE_DIR") or Path.home() / ".cache" / "causalsre"
    return Path(root) / "kernels"


def _build(compiler: str) -> Path:
    source = b"\0".join(path.read_bytes() for path in SOURCES)
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(),
                                     _cpu_flags().encode(), platform.machine().encode()])).hexdigest()[:16]
    target = _cache_dir() / f"paged_attention-{key}.so"
    if target.is_file():
        return target
    if os.path.lexists(target) and not target.is_symlink():  # a FIFO or device in the cache: never replaced
        raise OSError(f"{target} is in the kernel cache but is not a regular file")
    target.parent.mkdir(parents=True, exist_ok=True)
    # build beside the target and rename: concurrent test workers never load a half-written library
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run([compiler, *FLAGS, "-o", tmp, *map(str, SOURCES), "-lmvec", "-lm"], check=True, capture_output=True,
                       timeout=120)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _load() -> ctypes.CDLL | None:
    global _lib, _status
    if _status is not None:
        return _lib
    if os.environ.get(DISABLE_ENV, "1").strip().lower() in ("0", "false", "off", "no"):
        _status = f"off ({DISABLE_ENV}=0): pure-torch attention"
        return None
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        _status = "no C compiler found: pure-torch attention"
        return None
    try:
        lib = ctypes.CDLL(str(_build(compiler)))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        _status = f"kernel build failed ({type(exc).__name__}: {detail[:200]!r}): pure-torch attention"
        return None
    ptr, i32, i64, f32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_float
    signatures = {
        "paged_attention_decode": (i32, [ptr] * 5 + [i32] * 6 + [i64, f32, i32]),
        "pack_panels": (i32, [ptr, ptr, i32, i32]),
        "panel_linear": (i32, [ptr] * 3 + [i32] * 4),
        "add_rms_norm": (None, [ptr] * 4 + [i32, i32, f32, i32]),
        "rotary_cache_write": (None, [ptr, i64] + [ptr] * 5 + [i32] * 5),
        "silu_mul": (None, [ptr, ptr, i32, i32, i32]),
        "read_probe": (ctypes.c_double, [ptr, i64, i32]),
        "decoder_stack": (i32, [ptr] * 8 + [i32, ptr, i64] + [ptr] * 6 + [i32] * 8 + [f32, f32, i32]
                          + [ptr, i32, ptr, ptr, i32, ptr, ptr, ptr]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    _lib, _status = lib, "C paged decode attention"
    return _lib


def available(device: torch.device, dtype: torch.dtype, num_heads: int) -> bool:
    """Whether the kernel serves this model: CPU, float32, and at most 128 query heads."""
    if device.type != "cpu" or dtype != torch.float32 or num_heads > 128:
        return False
    return _load() is not None


def status() -> str:
    """Which decode attention the engine uses on the CPU, and why."""
    _load()
    return _status or "unknown"


def paged_decode_attention(q: torch.Tensor, kv_cache: torch.Tensor, tables: torch.Tensor, lengths: torch.Tensor,
                           block_size: int, out: torch.Tensor | None = None) -> torch.Tensor:
    """Attention output [S, H, D] of one query token per sequence over its paged context.

    q [S, H, D] float32 (heads and dims contiguous; rows may be strided, as a view of the fused QKV output);
    kv_cache [slots, 2, Hkv, D]; tables [S, W] int32 block ids; lengths [S] int32. ``out``: where to write
    ([S, H * D], contiguous), or None for a new tensor."""
    lib = _load()
    if lib is None:
        raise RuntimeError(f"paged attention kernel unavailable: {_status}")
    s, h, d = q.shape
    if q.stride(2) != 1 or q.stride(1) != d:
        q = q.contiguous()
    hkv = kv_cache.shape[2]
    out = torch.empty((s, h, d), dtype=q.dtype) if out is None else out
    rc = lib.paged_attention_decode(q.data_ptr(), kv_cache.data_ptr(), tables.data_ptr(), lengths.data_ptr(),
                                    out.data_ptr(), s, h, hkv, d, block_size, tables.shape[1], q.stride(0),
                                    d ** -0.5, torch.get_num_threads())
    if rc != 0:
        raise RuntimeError(f"paged attention kernel failed (code {rc})")
    return out


# The fused per-layer ops (csrc/cpu_ops.c). Callers check available() first; all tensors float32, contiguous
# unless said otherwise.

PANEL = 16     # csrc/cpu_ops.c NR: outputs per panel


def pack_panels(weight: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor | None:
    """weight [out, in] as panels [out / 16, in, 16] for :func:`panel_linear` (None if out % 16 != 0), written
    into ``out`` (contiguous, out * in elements: a slice of a huge-page arena, see Llama.pack_panels) or a new
    tensor."""
    out_features, in_features = weight.shape
    if out_features % PANEL:
        return None
    weight = weight.detach().contiguous()
    shape = (out_features // PANEL, in_features, PANEL)
    panels = torch.empty(shape, dtype=weight.dtype) if out is None else out.view(shape)
    _lib.pack_panels(weight.data_ptr(), panels.data_ptr(), in_features, out_features)
    return panels


def panel_linear(x: torch.Tensor, panels: torch.Tensor) -> torch.Tensor:
    """x [M, in] @ W^T from W's panels ([out / 16, in, 16]); M >= 1."""
    m, k = x.shape
    out = torch.empty((m, panels.shape[0] * PANEL), dtype=x.dtype)
    if _lib.panel_linear(x.data_ptr(), panels.data_ptr(), out.data_ptr(), m, k, out.shape[1],
                         torch.get_num_threads()) != 0:
        raise RuntimeError(f"panel_linear: unsupported shape {tuple(x.shape)} x {tuple(panels.shape)}")
    return out


def add_rms_norm(x: torch.Tensor, delta: torch.Tensor | None, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """x += delta in place (the residual), then the RMSNorm of x into a new tensor."""
    out = torch.empty_like(x)
    _lib.add_rms_norm(x.data_ptr(), None if delta is None else delta.data_ptr(), weight.data_ptr(), out.data_ptr(),
                      x.shape[0], x.shape[1], eps, torch.get_num_threads())
    return out


def rotary_cache_write(qkv: torch.Tensor, positions: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                       kv_cache: torch.Tensor, slots: torch.Tensor, num_heads: int, num_kv_heads: int) -> None:
    """Rotate the q and k heads of qkv [N, (H + 2 Hkv) D] in place (positions [N] long into the cos/sin tables
    [max_position, D]) and write k and v to kv_cache [slots, 2, Hkv, D] at ``slots`` [N] long."""
    _lib.rotary_cache_write(qkv.data_ptr(), qkv.stride(0), positions.data_ptr(), cos.data_ptr(), sin.data_ptr(),
                            kv_cache.data_ptr(), slots.data_ptr(), qkv.shape[0], num_heads, num_kv_heads,
                            cos.shape[1], torch.get_num_threads())


def read_probe(buf: torch.Tensor, num_threads: int) -> float:
    """Sum of a float32 buffer (numel % 64 == 0) with a load-bound C loop: the roofline's bandwidth probe."""
    return _lib.read_probe(buf.data_ptr(), buf.numel(), num_threads)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up from gate_up [N, 2 I] = [gate | up]."""
    n, two_i = gate_up.shape
    out = torch.empty((n, two_i // 2), dtype=gate_up.dtype)
    _lib.silu_mul(gate_up.data_ptr(), out.data_ptr(), n, two_i // 2, torch.get_num_threads())
    return out


class StackWeights:
    """The addresses :func:`decoder_stack` reads each layer's weights from ([layers, 6] int64), and the
    tensors behind them, held so the addresses stay valid as long as this object lives; the final norm and
    the ``lm_head`` panels when the step's tail can run in the same call; and the call's scratch buffers,
    allocated once for PANEL_LINEAR_MAX_ROWS rows (a step's first n rows of each are its views), where
    each step allocated six."""

    def __init__(self, layers, final_norm: torch.Tensor | None = None, lm_panels: torch.Tensor | None = None) -> None:
        self.tensors = []
        for layer in layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.tensors += [layer.input_layernorm.weight.detach(), attn.qkv_proj.panels, attn.o_proj.panels,
                             layer.post_attention_layernorm.weight.detach(), mlp.gate_up_proj.panels,
                             mlp.down_proj.panels]
        if any(t is None or not t.is_contiguous() or t.dtype != torch.float32 for t in self.tensors):
            raise ValueError("decoder_stack needs every projection packed as panels (widths % 16 == 0)")
        self.pointers = torch.tensor([t.data_ptr() for t in self.tensors], dtype=torch.int64).view(-1, 6)
        attn, mlp = layers[0].self_attn, layers[0].mlp
        hidden = layers[0].input_layernorm.weight.shape[0]
        rows = PANEL_LINEAR_MAX_ROWS
        self.final_norm = None if final_norm is None else final_norm.detach()
        self.lm_panels = lm_panels if lm_panels is not None and lm_panels.is_contiguous() else None
        self.vocab = 0 if self.lm_panels is None else self.lm_panels.shape[0] * PANEL
        widths = {"delta": hidden, "normed": hidden, "qkv": attn.q_size + 2 * attn.kv_size, "attn": attn.q_size,
                  "gate_up": mlp.gate_up_proj.weight.shape[0], "act": mlp.down_proj.weight.shape[1],
                  "sample_x": hidden, "sample_delta": hidden}
        self.scratch = {name: torch.empty((rows, width), dtype=torch.float32) for name, width in widths.items()}
        self.scratch_ptrs = {name: t.data_ptr() for name, t in self.scratch.items()}


def decoder_stack(x: torch.Tensor, weights: StackWeights, kv_caches: torch.Tensor, positions: torch.Tensor,
                  slots: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, tables: torch.Tensor,
                  lengths: torch.Tensor, block_size: int, num_heads: int, inter: int, eps: float,
                  sample_rows: torch.Tensor | None = None) -> torch.Tensor:
    """Every decoder layer of a step in one C call (csrc/decoder_stack.c): x [N, h] is the residual, added
    to in place. With ``sample_rows`` ([S] long) and the ``lm_head`` panels in ``weights``, the logits
    [S, V] of those rows (final residual add, norm and ``lm_head`` in the same call); otherwise the last
    layer's MLP output [N, h], not yet added (a view of the scratch: use it before the next call).
    kv_caches [layers, slots, 2, Hkv, D]; the rest as for the per-op kernels above.
    N <= PANEL_LINEAR_MAX_ROWS."""
    n, hidden = x.shape
    if n > PANEL_LINEAR_MAX_ROWS:
        raise ValueError(f"decoder_stack serves at most {PANEL_LINEAR_MAX_ROWS} rows, got {n}")
    num_kv_heads, head_dim = kv_caches.shape[3], kv_caches.shape[4]
    p = weights.scratch_ptrs
    tail = sample_rows is not None and weights.lm_panels is not None
    ns = sample_rows.shape[0] if tail else 0
    logits = torch.empty((ns, weights.vocab), dtype=x.dtype) if tail else None
    rc = _lib.decoder_stack(x.data_ptr(), p["delta"], p["normed"], p["qkv"], p["attn"], p["gate_up"], p["act"],
                            weights.pointers.data_ptr(), weights.pointers.shape[0], kv_caches.data_ptr(),
                            kv_caches.stride(0), positions.data_ptr(), slots.data_ptr(), cos.data_ptr(),
                            sin.data_ptr(), tables.data_ptr(), lengths.data_ptr(), tables.shape[1], block_size, n,
                            hidden, num_heads, num_kv_heads, head_dim, inter, eps, head_dim ** -0.5,
                            torch.get_num_threads(),
                            sample_rows.data_ptr() if tail else None, ns,
                            weights.final_norm.data_ptr() if tail else None,
                            weights.lm_panels.data_ptr() if tail else None, weights.vocab,
                            p["sample_x"], p["sample_delta"], logits.data_ptr() if tail and ns else None)
    if rc != 0:
        raise RuntimeError(f"decoder_stack failed (code {rc})")
    return logits if tail else weights.scratch["delta"][:n]
