"""The engine loop: admit requests, schedule a step, run it, emit tokens and telemetry.

Every timestamp handed to the observer is :meth:`Engine.now_ns`, from ``time.perf_counter_ns`` minus the
engine's t0, so events, tokens and steps share one monotonic clock. With a step-cost model (``clock=``,
:mod:`harness.engine.clock`) that clock is modelled instead: each step still runs its real forward pass, but
time advances by the model's cost of the step, and the driver moves it to the next arrival when idle
(:meth:`Engine.advance_to`), so timings do not depend on how busy the machine is.
"""

from __future__ import annotations

import time

import torch

from harness.engine.errors import UserError
from harness.engine.clock import StepCostModel, StepFeatures
from harness.engine.config import LIVE_KNOBS, EngineConfig, ModelConfig
from harness.engine.governor.config import GovernorConfig
from harness.engine.governor.step_budget import KnownStepCost
from harness.engine.model_runner import ModelRunner
from harness.engine.observer import EngineObserver, NullObserver, RequestRecord, StepRecord
from harness.engine.scheduler import Scheduler, SchedulerOutput
from harness.engine.sequence import Sequence, SeqStatus


class Engine:
    def __init__(self, config: EngineConfig, observer: EngineObserver | None = None,
                 governor: GovernorConfig | None = None, clock: StepCostModel | None = None) -> None:
        if not isinstance(config, EngineConfig):
            raise UserError("Engine needs an EngineConfig", "build one with EngineConfig(...)")
        if governor is not None and not isinstance(governor, GovernorConfig):
            raise UserError("Engine's governor must be a GovernorConfig", "build one with GovernorConfig.from_dict")
        if clock is not None and not isinstance(clock, StepCostModel):
            raise UserError("Engine's clock must be a StepCostModel (or None: the wall clock)",
                            "build one with StepCostModel.from_dict or harness.clock_fit.fit_step_cost")
        if config.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"device {config.device!r} asked for but CUDA is not available", "use device='cpu'")
        self.config = config
        self.observer = observer if observer is not None else NullObserver()
        self.model_config = ModelConfig.from_name(config.model)
        self.set_num_threads(config.num_threads)
        self.runner = ModelRunner(self.model_config, config)
        self.scheduler = Scheduler(config, governor)
        self.governor = self.scheduler.governor   # online SLO counters always; it acts only under policy budget
        self.step_delay_s = 0.0
        self.step_id = 0
        self.sequences: dict[int, Sequence] = {}
        self._last_decode_ns: int | None = None   # the last step with decodes, for the governor's TPOT signal
        self.clock = clock                        # None: the wall clock
        if clock is not None:   # the governor's per-step prefill cap predicts steps with the clock's own model
            self.governor.step_cost = KnownStepCost(clock)
        self.last_step_features: StepFeatures | None = None   # what the last step computed (cost-model fits)
        self._modelled_ns = 0
        self._t0 = time.perf_counter_ns()

    # ---- clock and knobs ----------------------------------------------------------------------------------
    @property
    def is_modelled(self) -> bool:
        return self.clock is not None

    def now_ns(self) -> int:
        if self.clock is not None:
            return self._modelled_ns
        return time.perf_counter_ns() - self._t0

    def advance_to(self, ns: int) -> bool:
        """Idle until ``ns``: a modelled clock jumps there (True); the wall clock cannot (False: the caller
        sleeps)."""
        if self.clock is None:
            return False
        self._modelled_ns = max(self._modelled_ns, int(ns))
        return True

    def set_step_delay(self, seconds: float) -> None:
        """Extra sleep per step: a fault that makes the hardware look slower."""
        if not isinstance(seconds, (int, float)) or seconds < 0:
            raise UserError(f"step delay must be a number of seconds >= 0, got {seconds!r}", "pass e.g. 0.01")
        self.step_delay_s = float(seconds)
        if isinstance(self.governor.step_cost, KnownStepCost):   # the modelled clock adds it to every step
            self.governor.step_cost.delay_ns = self.step_delay_s * 1e9

    def set_num_threads(self, n: int) -> None:
        """torch intra-op threads (process-wide: torch has one pool)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"num_threads must be a positive integer, got {n!r}", "pass e.g. 2")
        torch.set_num_threads(n)

    def update_config(self, **knobs: object) -> None:
        """A config push while running; only the knobs in ``LIVE_KNOBS`` may change."""
        fixed = sorted(set(knobs) - set(LIVE_KNOBS))
        if fixed:
            raise UserError(f"cannot change {', '.join(fixed)} on a running engine",
                            f"live knobs are: {', '.join(LIVE_KNOBS)}")
        new = self.config.replace(**knobs)
        old_blocks = self.config.num_kv_blocks
        for name in knobs:
            setattr(self.config, name, getattr(new, name))   # the scheduler shares this object
        if new.num_kv_blocks != old_blocks:
            self.runner.resize_kv(new.num_kv_blocks)
            out = self.scheduler.resize_kv(new.num_kv_blocks)
            now = self.now_ns()
            for seq in out.preempted:
                self.observer.on_event(seq.request_id, "preempted", now, None)
            self._drop_unservable(now)

    # ---- requests -----------------------------------------------------------------------------------------
    def add_request(self, request_id: int, prompt_token_ids: list[int], target_output_tokens: int, *,
                    priority: int = 0, tenant: str | None = None, arrival_ns: int | None = None) -> bool:
        now = self.now_ns()
        if request_id in self.sequences:
            raise UserError(f"request id {request_id} is already in the engine", "use unique request ids")
        if not prompt_token_ids or target_output_tokens < 1:
            raise UserError("a request needs a non-empty prompt and target_output_tokens >= 1",
                            "check the workload generator")
        vocab = self.model_config.vocab_size
        if min(prompt_token_ids) < 0 or max(prompt_token_ids) >= vocab:
            raise UserError(f"prompt token ids must lie in [0, {vocab})", "map tokens into the model's vocabulary")
        if len(prompt_token_ids) + target_output_tokens > self.model_config.max_position:
            raise UserError(f"prompt + output of request {request_id} exceeds the model's "
                            f"{self.model_config.max_position} positions", "shorten the request")
        seq = Sequence(request_id, prompt_token_ids, target_output_tokens, priority=priority, tenant=tenant,
                       arrival_ns=now if arrival_ns is None else arrival_ns, enqueue_ns=now)
        unservable = self._unservable_reason(seq)
        shed = None if unservable else self.governor.on_arrival(seq, now, is_active=self.config.policy == "budget")
        if not (unservable or shed or self.scheduler.has_room()):
            # A full queue: the policy may push a queued request out to make room (the governor: a sheddable
            # one for a protected arrival); it leaves as rejected, like an arrival refused at the door.
            victim = self.scheduler.policy.queue_victim(seq, self.scheduler.waiting)
            if victim is not None:
                self.scheduler.remove(victim)
                self.observer.on_event(victim.request_id, "rejected", now, None)
                self._finish(victim, now, "rejected", "shed_queue")
        if unservable or shed or not self.scheduler.add(seq):
            self.observer.on_event(request_id, "rejected", now, None)
            status, reason = ("error", unservable) if unservable else ("rejected", shed or "queue_full")
            self._report(seq, now, status, reason)
            return False
        self.sequences[request_id] = seq
        self.observer.on_event(request_id, "queued", now, None)
        return True

    def _unservable_reason(self, seq: Sequence) -> str | None:
        """Requests that could never finish with the current settings (rather than deadlock the queue)."""
        total = seq.num_prompt_tokens + seq.target_output_tokens
        if self.scheduler.block_manager.blocks_needed(total) > self.config.num_kv_blocks:
            return "exceeds_kv_capacity"
        if not self.config.enable_chunked_prefill and seq.num_prompt_tokens > self.config.max_num_batched_tokens:
            return "prompt_exceeds_token_budget"
        return None

    def _drop_unservable(self, now: int) -> None:
        for seq in list(self.scheduler.waiting) + list(self.scheduler.running):
            reason = self._unservable_reason(seq)
            if reason:
                self.scheduler.remove(seq)
                self._finish(seq, now, "error", reason)

    def abort(self, request_id: int) -> bool:
        seq = self.sequences.get(request_id)
        if seq is None or seq.status is SeqStatus.FINISHED:
            return False
        now = self.now_ns()
        self.scheduler.remove(seq)
        self.observer.on_event(request_id, "aborted", now, None)
        self._finish(seq, now, "aborted", "abort")
        return True

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished()

    # ---- the loop -----------------------------------------------------------------------------------------
    def step(self) -> StepRecord | None:
        """One iteration; None when there is nothing to run."""
        if not self.scheduler.has_unfinished():
            return None
        obs = self.observer
        start = self.now_ns()
        step_id = self.step_id
        cfg = self.config
        knobs = self.governor.on_step(start, cfg.max_num_seqs, cfg.max_num_batched_tokens,
                                      is_active=cfg.policy == "budget", last_decode_step_ns=self._last_decode_ns)
        self._last_decode_ns = None
        if knobs:
            self.update_config(**knobs)   # the live-config path; the harness records it in run_settings
        out = self.scheduler.schedule(start)
        for seq in out.timed_out:
            obs.on_event(seq.request_id, "timeout", start, step_id)
            self._finish(seq, start, "timeout", "timeout")
        for seq in out.shed:
            obs.on_event(seq.request_id, "rejected", start, step_id)
            self._finish(seq, start, "rejected", "shed_doomed")
        if not out.chunks:
            return None
        self.step_id += 1
        for seq in out.preempted:
            obs.on_event(seq.request_id, "preempted", start, step_id)
        for seq in out.newly_scheduled:
            obs.on_event(seq.request_id, "scheduled", start, step_id)
            if seq.first_scheduled_ns is None:
                seq.first_scheduled_ns = start
        scheduled = self.now_ns()
        self.last_step_features = features = _features(out)
        tokens = self.runner.run(out.chunks)
        if self.clock is not None:
            # Scheduling is inside the model's base cost; a step-delay fault adds its seconds, not a sleep.
            self._modelled_ns += self.clock.cost_ns(features) + int(round(self.step_delay_s * 1e9))
        elif self.step_delay_s:
            time.sleep(self.step_delay_s)
        end = self.now_ns()
        self._emit(out, tokens, step_id, end)
        record = self._step_record(out, step_id, start, scheduled, end)
        if record.num_decode_seqs:
            self._last_decode_ns = end - start
        if self.clock is None and cfg.policy == "budget":   # the wall clock's step-cost estimate learns
            self.governor.observe_step(features.prefill_tokens, features.decode_seqs, features.kv_context_tokens,
                                       end - start)
        obs.on_step(record)
        return record

    def _emit(self, out: SchedulerOutput, tokens: list[int | None], step_id: int, now: int) -> None:
        obs = self.observer
        for chunk, token in zip(out.chunks, tokens):
            seq = chunk.seq
            seq.num_computed_tokens += chunk.num_tokens
            if token is None:
                continue
            seq.token_ids.append(token)
            index = seq.num_output_tokens - 1
            if seq.first_token_ns is None:
                seq.first_token_ns = now
                obs.on_event(seq.request_id, "first_token", now, step_id)
            seq.last_token_ns = now
            obs.on_token(seq.request_id, index, step_id, now)
            if seq.is_done:
                self.scheduler.remove(seq)
                obs.on_event(seq.request_id, "finished", now, step_id)
                self._finish(seq, now, "ok", "length")

    def _step_record(self, out: SchedulerOutput, step_id: int, start: int, scheduled: int, end: int) -> StepRecord:
        prefill = [c for c in out.chunks if c.is_prefill]
        num_decode = len(out.chunks) - len(prefill)
        bm = self.scheduler.block_manager
        return StepRecord(
            step_id=step_id, start_ns=start, end_ns=end, schedule_ns=scheduled - start, forward_ns=end - scheduled,
            num_prefill_seqs=len(prefill), num_prefill_tokens=sum(c.num_tokens for c in prefill),
            num_decode_seqs=num_decode, num_decode_tokens=num_decode,
            num_waiting=len(self.scheduler.waiting), num_running=len(self.scheduler.running),
            num_kv_blocks_used=bm.num_used, num_kv_blocks_total=bm.num_blocks,
            num_preemptions=len(out.preempted))

    def _finish(self, seq: Sequence, now: int, status: str, reason: str) -> None:
        self.sequences.pop(seq.request_id, None)
        self._report(seq, now, status, reason)

    def _report(self, seq: Sequence, now: int, status: str, reason: str) -> None:
        self.governor.on_done(seq, status, now)
        self.observer.on_request_done(RequestRecord(
            request_id=seq.request_id, prompt_tokens=seq.num_prompt_tokens,
            target_output_tokens=seq.target_output_tokens, output_tokens=seq.num_output_tokens,
            enqueue_ns=seq.enqueue_ns, first_scheduled_ns=seq.first_scheduled_ns,
            first_token_ns=seq.first_token_ns, last_token_ns=seq.last_token_ns, finish_ns=now,
            status=status, finish_reason=reason, num_preemptions=seq.num_preemptions,
            tenant=seq.tenant, priority=seq.priority))


def _features(out: SchedulerOutput) -> StepFeatures:
    """The cost model's regressors of a scheduled step, before its tokens are counted as computed."""
    prefill = decode = context = 0
    for chunk in out.chunks:
        context += chunk.seq.num_computed_tokens + chunk.num_tokens
        if chunk.is_prefill:
            prefill += chunk.num_tokens
        else:
            decode += 1
    return StepFeatures(prefill, decode, context)
