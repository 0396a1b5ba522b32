"""Training checkpoints under `<outputDir>/checkpoints/step-N/`: trainable weights, optimizer,
scheduler, RNG state and the loss history, written atomically; the last two are kept."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

_STEP = re.compile(r"^step-(\d+)$")
KEEP = 2


def latest_checkpoint(root: Path) -> Path | None:
    if not root.is_dir():
        return None
    steps = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _STEP.match(p.name)) and (p / "state.pt").is_file()
    ]
    return max(steps)[1] if steps else None


def save_checkpoint(
    root: Path, step: int, model: Any, optimizer: Any, scheduler: Any, losses: list[float]
) -> Path:
    import torch

    state = {
        "step": step,
        "model": {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
        "losses": list(losses),
    }
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".step-{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted(p for p in root.iterdir() if _STEP.match(p.name))[:-KEEP]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(
    path: Path, model: Any, optimizer: Any, scheduler: Any
) -> tuple[int, list[float]]:
    import torch

    state = torch.load(path / "state.pt", map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    missing = [n for n in state["model"] if n not in params]
    if missing:
        raise ValueError(f"checkpoint {path} does not match the model ({missing[:3]} unknown)")
    with torch.no_grad():
        for name, value in state["model"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return int(state["step"]), list(state["losses"])
