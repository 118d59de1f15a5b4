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

SOURCE = Path(__file__).parent / "csrc" / "paged_attention.c"
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
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), compiler.encode(),
                                     _cpu_flags().encode(), platform.machine().encode()])).hexdigest()[:16]
    target = _cache_dir() / f"paged_attention-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # build beside the target and rename: concurrent test workers never load a half-written library
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run([compiler, *FLAGS, "-o", tmp, str(SOURCE), "-lmvec", "-lm"], check=True, capture_output=True,
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
    fn = lib.paged_attention_decode
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int] * 7 + [ctypes.c_float, ctypes.c_int]
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
                           block_size: int, max_length: int) -> torch.Tensor:
    """Attention output [S, H, D] of one query token per sequence over its paged context.

    q [S, H, D] float32; kv_cache [slots, 2, Hkv, D]; tables [S, W] int32 block ids; lengths [S] int32."""
    lib = _load()
    if lib is None:
        raise RuntimeError(f"paged attention kernel unavailable: {_status}")
    q = q.contiguous()
    s, h, d = q.shape
    hkv = kv_cache.shape[2]
    out = torch.empty_like(q)
    rc = lib.paged_attention_decode(q.data_ptr(), kv_cache.data_ptr(), tables.data_ptr(), lengths.data_ptr(),
                                    out.data_ptr(), s, h, hkv, d, block_size, tables.shape[1], max_length,
                                    d ** -0.5, torch.get_num_threads())
    if rc != 0:
        raise RuntimeError(f"paged attention kernel failed (code {rc})")
    return out
