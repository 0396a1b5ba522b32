"""Held-out evaluation: token loss and perplexity, BLEU (sacrebleu) and ROUGE-L (rouge-score) of
generated answers, and the verdict against the thresholds."""

from __future__ import annotations

import math
from typing import Any

from drover_workers.common.device import model_device, to_device
from drover_workers.finetune.config import Evaluation, Thresholds
from drover_workers.finetune.data import Example, collate


def eval_loss(model: Any, examples: list[Example], pad_id: int, batch_size: int) -> float:
    """Mean loss per label token over the whole set (not a mean of batch means)."""
    import torch

    total, count = 0.0, 0
    device = model_device(model)
    with torch.inference_mode():
        for start in range(0, len(examples), batch_size):
            batch = to_device(collate(examples[start : start + batch_size], pad_id), device)
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits
            shift_logits = logits[:, :-1].reshape(-1, logits.size(-1)).float()
            shift_labels = batch["labels"][:, 1:].reshape(-1)
            loss = torch.nn.functional.cross_entropy(
                shift_logits, shift_labels, ignore_index=-100, reduction="sum"
            )
            total += float(loss)
            count += int((shift_labels != -100).sum())
    return total / max(count, 1)


def generate_answers(
    model: Any, tokenizer: Any, prompts: list[str], max_new_tokens: int
) -> list[str]:
    import torch

    answers = []
    device = model_device(model)
    with torch.inference_mode():
        for prompt in prompts:
            enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = out[0, enc["input_ids"].shape[1] :]
            answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers


def text_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    import sacrebleu
    from rouge_score import rouge_scorer

    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = [
        scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(references, hypotheses, strict=True)
    ]
    return {"bleu": round(bleu, 4), "rougeL": round(sum(rouge) / max(len(rouge), 1), 6)}


def check_thresholds(metrics: dict[str, Any], thresholds: Thresholds) -> list[str]:
    """Messages for every threshold not met, e.g. `minRougeL: 0.12 < 0.35`."""
    failed = []
    checks = [
        ("maxLoss", "loss", thresholds.max_loss, max),
        ("maxPerplexity", "perplexity", thresholds.max_perplexity, max),
        ("minRougeL", "rougeL", thresholds.min_rouge_l, min),
        ("minBleu", "bleu", thresholds.min_bleu, min),
    ]
    for name, metric, limit, kind in checks:
        if limit is None:
            continue
        value = metrics.get(metric)
        if value is None:
            failed.append(f"{name}: {metric} was not computed")
        elif kind is max and value > limit:
            failed.append(f"{name}: {value:.4g} > {limit:g}")
        elif kind is min and value < limit:
            failed.append(f"{name}: {value:.4g} < {limit:g}")
    return failed


def evaluate(
    model: Any, tokenizer: Any, examples: list[Example], spec: Evaluation, batch_size: int
) -> dict[str, Any]:
    # The first maxSamples held-out examples, for every metric: the loss and the generated
    # answers alike (the API: "Evaluate on at most this many examples").
    examples = examples[: spec.max_samples]
    metrics: dict[str, Any] = {"samples": len(examples)}
    wanted = set(spec.metrics)
    t = spec.thresholds
    for metric, limit in (
        ("loss", t.max_loss),
        ("perplexity", t.max_perplexity),
        ("rougeL", t.min_rouge_l),
        ("bleu", t.min_bleu),
    ):
        if limit is not None:
            wanted.add(metric)  # a threshold needs its metric, listed or not
    if wanted & {"loss", "perplexity"}:
        loss = eval_loss(model, examples, tokenizer.pad_token_id, batch_size)
        if "loss" in wanted:
            metrics["loss"] = round(loss, 6)
        if "perplexity" in wanted:
            metrics["perplexity"] = round(math.exp(min(loss, 50.0)), 4)
    scored = [e for e in examples if e.prompt is not None]
    if wanted & {"bleu", "rougeL"} and scored:
        hyps = generate_answers(
            model, tokenizer, [e.prompt or "" for e in scored], spec.max_new_tokens
        )
        scores = text_scores(hyps, [e.reference or "" for e in scored])
        metrics.update({k: v for k, v in scores.items() if k in wanted})
        metrics["examples"] = [
            {"prompt": e.prompt, "reference": e.reference, "generated": h}
            for e, h in list(zip(scored, hyps, strict=True))[:3]
        ]
    failed = check_thresholds(metrics, spec.thresholds)
    metrics["passed"] = not failed
    metrics["failedThresholds"] = failed
    return metrics
