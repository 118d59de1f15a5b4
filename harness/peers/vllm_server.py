"""Start and stop vLLM's OpenAI-compatible server from the peer virtualenv, with flags from engine settings.

The one place the engine settings are translated into vLLM's (docs/peers.md repeats this table):

| engine setting           | vLLM                                                 |
| ------------------------ | ---------------------------------------------------- |
| model                    | model directory ``.venv-vllm/models/<preset>``, dummy weights |
| dtype                    | ``--dtype``                                          |
| seed                     | ``--seed``                                           |
| num_threads              | ``VLLM_CPU_OMP_THREADS_BIND=0-<n-1>`` (cores the workers bind) |
| max_num_seqs             | ``--max-num-seqs``                                   |
| max_num_batched_tokens   | ``--max-num-batched-tokens``                         |
| enable_chunked_prefill   | ``--enable-chunked-prefill`` / ``--no-enable-chunked-prefill`` |
| chunk_size               | ``--long-prefill-token-threshold`` (largest prefill piece of one request per step) |
| policy fcfs / priority   | ``--scheduling-policy`` (sjf: refused, vLLM has no such policy) |
| batching_mode            | decode_first only (vLLM schedules running decodes first) |
| num_kv_blocks            | ``--num-gpu-blocks-override``, rescaled to the same tokens in vLLM's blocks |
| block_size               | ``--block-size``, rounded up to a multiple of 32 (vLLM's CPU attention needs it) |
| (start-up)               | ``--enforce-eager`` unless ``CAUSALSRE_VLLM_COMPILE=1`` (torch.compile warm-up: minutes) |
| max_queue_len            | not mapped: vLLM's waiting queue is unbounded         |
| request_timeout_s        | client side: the harness gives up on a request after it |

A server started here is stopped by :meth:`VllmServer.stop` (SIGTERM to its process group, then SIGKILL);
on Linux it also gets SIGTERM if the harness process dies, so a killed harness leaves no server behind.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from causalsre.errors import UserError
from causalsre.safeio import open_output

REPO_ROOT = Path(__file__).resolve().parents[2]
VLLM_VENV = Path(os.environ.get("CAUSALSRE_VLLM_VENV", REPO_ROOT / ".venv-vllm"))
MAX_MODEL_LEN = 1024
CPU_BLOCK_MULTIPLE = 32  # vLLM 0.32's CPU attention: "No common block size for 16 (CPU_ATTN: [MultipleOf(32)])"
READY_TIMEOUT_S = 420.0  # first start compiles kernels and warms up: about a minute on 2 cores, more when busy
SETUP_FIX = "build the peer virtualenv with `make peer-vllm` (docs/peers.md)"


def vllm_python(venv: Path = VLLM_VENV) -> Path:
    return venv / "bin" / "python"


def unavailable_reason(venv: Path = VLLM_VENV) -> str | None:
    """Why a vLLM peer cannot start here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return f"vLLM's CPU build runs on Linux only, not {sys.platform}"
    if not (venv / ".installed").is_file() or not vllm_python(venv).exists():
        return f"{venv} is not built"
    return None


def model_dir(preset: str, venv: Path = VLLM_VENV) -> Path:
    path = venv / "models" / preset
    if not (path / "config.json").is_file():
        raise UserError(f"no vLLM model directory for preset {preset!r} at {path}",
                        f"{SETUP_FIX}; it builds the tiny and small presets")
    return path


def vllm_args(engine: Any) -> tuple[list[str], dict[str, str]]:
    """vLLM command-line flags and environment for an ``EngineSection``; UserError for what vLLM cannot do."""
    if engine.device != "cpu":
        raise UserError(f"the vLLM peer is its CPU build; engine.device={engine.device!r}", "use device = 'cpu'")
    if engine.policy not in ("fcfs", "priority"):
        raise UserError(f"vLLM has no {engine.policy!r} scheduling policy", "use policy 'fcfs' or 'priority'")
    if engine.batching_mode != "decode_first":
        raise UserError("vLLM always schedules running decodes first", "use batching_mode 'decode_first'")
    # vLLM's CPU attention takes blocks of a multiple of 32 tokens: round the block up and keep the pool's
    # size in tokens (num_kv_blocks x block_size) as close as whole blocks allow.
    block = max(CPU_BLOCK_MULTIPLE, -(-int(engine.block_size) // CPU_BLOCK_MULTIPLE) * CPU_BLOCK_MULTIPLE)
    num_blocks = max(1, -(-int(engine.num_kv_blocks) * int(engine.block_size) // block))
    args = ["--dtype", engine.dtype, "--seed", str(engine.seed),
            "--max-num-seqs", str(engine.max_num_seqs),
            "--max-num-batched-tokens", str(engine.max_num_batched_tokens),
            "--enable-chunked-prefill" if engine.enable_chunked_prefill else "--no-enable-chunked-prefill",
            "--long-prefill-token-threshold", str(engine.chunk_size),
            "--scheduling-policy", engine.policy,
            "--num-gpu-blocks-override", str(num_blocks), "--block-size", str(block)]
    if os.environ.get("CAUSALSRE_VLLM_COMPILE") != "1":
        # torch.compile's warm-up takes minutes on 2 busy cores at every start (and restart): eager by default.
        args.append("--enforce-eager")
    cores = max(1, min(int(engine.num_threads), os.cpu_count() or 1))
    # OMP_NUM_THREADS too: the harness (and the test suite) runs with 1, which vLLM's worker would inherit.
    env = {"VLLM_CPU_OMP_THREADS_BIND": "0" if cores == 1 else f"0-{cores - 1}", "OMP_NUM_THREADS": str(cores)}
    return args, env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child before exec: ask the kernel to SIGTERM it when the harness dies (Linux prctl).
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class VllmServer:
    """One vLLM server process on 127.0.0.1:<free port>, serving ``served_model_name``."""

    def __init__(self, engine: Any, *, served_model_name: str = "causalsre", venv: Path = VLLM_VENV,
                 port: int | None = None, log_path: Path | None = None):
        reason = unavailable_reason(venv)
        if reason is not None:
            raise UserError(f"cannot start vLLM: {reason}", SETUP_FIX)
        self.engine = engine
        self.venv = venv
        self.served_model_name = served_model_name
        self.port = port or free_port()
        self.log_path = log_path or Path(tempfile.mkstemp(prefix="vllm-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None
        self.flags, self.env = vllm_args(engine)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [str(vllm_python(self.venv)), "-m", "vllm.entrypoints.openai.api_server",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--model", str(model_dir(self.engine.model, self.venv)),
                "--served-model-name", self.served_model_name, "--load-format", "dummy",
                "--max-model-len", str(MAX_MODEL_LEN), "--gpu-memory-utilization", "0.2", *self.flags]

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> "VllmServer":
        """Start the server and wait until ``/health`` answers 200; UserError (with the log's tail) if not."""
        env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_TARGET_DEVICE="cpu", **self.env)
        env.pop("VIRTUAL_ENV", None)
        with open_output(self.log_path, "ab", what="vLLM log") as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise UserError(f"vLLM exited with status {self.process.returncode} while starting: "
                                f"{self.log_tail()}", f"see the whole log in {self.log_path}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise UserError(f"vLLM was not ready after {timeout_s:.0f} s", f"see its log in {self.log_path}")

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(line.strip() for line in text[-lines:])

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the server's process group, SIGKILL it after ``grace_s``; safe to call twice."""
        process, self.process = self.process, None
        if process is None:
            return
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            if process.poll() is not None:
                break  # the API server is gone (it may have died starting); its workers are killed below
            try:
                os.killpg(process.pid, sig)  # the group we created (start_new_session): vLLM and its workers
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(process.pid, signal.SIGKILL)  # worker processes that outlived the API server
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> "VllmServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
