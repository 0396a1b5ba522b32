"""The training loop: deterministic batch plan, AdamW with linear warm-up/decay, gradient
accumulation, checkpoints every N steps, resume from the latest checkpoint, progress reports.

The same loop runs in-process and inside each Ray Train worker (`rank`/`world` shard the data;
only rank 0 writes checkpoints).
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drover_workers.common.device import model_device, to_device
from drover_workers.common.report import Reporter
from drover_workers.common.runner import WorkerError
from drover_workers.finetune.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from drover_workers.finetune.config import Hyperparameters
from drover_workers.finetune.data import Example, collate

# Fault injection for tests and demos: fail right after this optimizer step (checkpoint kept).
FAIL_AT_STEP_ENV = "DROVER_FAULT_FAIL_AT_STEP"


@dataclass
class TrainStats:
    steps: int
    total_steps: int
    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None
    tokens_per_second: float = 0.0

    def as_result(self) -> dict[str, Any]:
        tail = self.losses[-min(5, len(self.losses)) :] if self.losses else []
        return {
            "steps": self.steps,
            "totalSteps": self.total_steps,
            "initialLoss": round(self.losses[0], 6) if self.losses else None,
            "finalLoss": round(sum(tail) / len(tail), 6) if tail else None,
            "resumedFromStep": self.resumed_from,
            "tokensPerSecond": round(self.tokens_per_second, 1),
        }


def plan_micro_batches(
    n: int, hp: Hyperparameters, rank: int = 0, world: int = 1
) -> list[list[int]]:
    """Example indices of every micro-batch this rank runs, over all epochs, in order."""
    rng = random.Random(hp.seed)
    plan = []
    for _ in range(hp.epochs):
        order = list(range(n))
        rng.shuffle(order)
        shard = order[rank::world]
        plan += [shard[i : i + hp.batch_size] for i in range(0, len(shard), hp.batch_size)]
    return plan


def count_steps(n: int, hp: Hyperparameters, world: int = 1) -> int:
    micro = len(plan_micro_batches(n, hp, 0, world))
    steps = math.ceil(micro / hp.gradient_accumulation_steps)
    return min(steps, hp.max_steps) if hp.max_steps else steps


def _accumulate(
    model: Any, examples: list[Example], micro: list[list[int]], pad_id: int, device: Any
) -> tuple[float, int]:
    """One optimizer step's gradients over its micro-batches: (mean loss, tokens seen)."""
    step_loss, tokens = 0.0, 0
    for indices in micro:
        batch = to_device(collate([examples[i] for i in indices], pad_id), device)
        loss = model(**batch).loss
        (loss / len(micro)).backward()
        step_loss += float(loss.detach()) / len(micro)
        tokens += int(batch["attention_mask"].sum())
    return step_loss, tokens


def train_loop(
    model: Any,
    unwrapped: Any,
    examples: list[Example],
    hp: Hyperparameters,
    checkpoints: Path,
    reporter: Reporter,
    pad_id: int,
    rank: int = 0,
    world: int = 1,
) -> TrainStats:
    import torch
    from transformers import get_linear_schedule_with_warmup

    total = count_steps(len(examples), hp, world)
    plan = plan_micro_batches(len(examples), hp, rank, world)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=hp.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, min(hp.warmup_steps, total), total)
    stats = TrainStats(steps=0, total_steps=total)
    latest = latest_checkpoint(checkpoints)
    if latest is not None:
        stats.steps, stats.losses = load_checkpoint(latest, unwrapped, optimizer, scheduler)
        stats.resumed_from = stats.steps
        reporter.progress(force=True, phase="resumed", step=stats.steps, totalSteps=total)
    fail_at = int(os.environ.get(FAIL_AT_STEP_ENV, "0") or 0)
    ga = hp.gradient_accumulation_steps
    device = model_device(unwrapped)
    model.train()
    started, tokens = time.monotonic(), 0
    while stats.steps < total:
        micro = plan[stats.steps * ga : (stats.steps + 1) * ga]
        if not micro:
            break
        step_loss, step_tokens = _accumulate(model, examples, micro, pad_id, device)
        tokens += step_tokens
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        stats.steps += 1
        stats.losses.append(step_loss)
        stats.tokens_per_second = tokens / max(time.monotonic() - started, 1e-9)
        reporter.progress(
            force=stats.steps in (1, total),
            phase="training",
            step=stats.steps,
            totalSteps=total,
            loss=round(step_loss, 4),
            learningRate=scheduler.get_last_lr()[0],
            tokensPerSecond=round(stats.tokens_per_second, 1),
        )
        if rank == 0 and (stats.steps % hp.checkpoint_steps == 0 or stats.steps == total):
            save_checkpoint(checkpoints, stats.steps, unwrapped, optimizer, scheduler, stats.losses)
        if fail_at and stats.steps == fail_at:
            raise WorkerError("FaultInjected", f"{FAIL_AT_STEP_ENV}={fail_at}: failing on purpose")
    model.eval()
    return stats
