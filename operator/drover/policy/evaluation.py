"""Policy layer: scoring a canary's answers to the rollout's evaluation prompts, pure.

Each answer is checked against its prompt's expectations (contains, notContains, regex, and a
ROUGE-L floor against a reference); the I/O layer (`drover.k8s.serving`) asks the canary and
passes the answers here. Used at warm-up and at each analysis step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from drover.api.evaluation_prompts import EvaluationPrompt, PromptExpectation

__all__ = ["DEFAULT_MIN_ROUGE_L", "evaluation_pass_rate", "rouge_l", "score_evaluation_prompt"]

DEFAULT_MIN_ROUGE_L = 0.3
_WORD = re.compile(r"[^\W_]+")


def _tokens(text: str) -> list[str]:
    # rouge-score's default tokenizer (lowercase, alphanumeric runs), extended to any alphabet.
    return _WORD.findall(text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 (longest common subsequence of tokens), as rouge-score computes it unstemmed.

    Written here so the operator needs no NLP package; tests check it against rouge-score.
    """
    cand, ref = _tokens(candidate), _tokens(reference)
    if not cand or not ref:
        return 0.0
    prev = [0] * (len(ref) + 1)
    for c in cand:
        row = [0]
        for j, r in enumerate(ref):
            row.append(prev[j] + 1 if c == r else max(prev[j + 1], row[j]))
        prev = row
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_evaluation_prompt(
    prompt: EvaluationPrompt | PromptExpectation, answer: str | None
) -> bool:
    """Whether an answer meets every expectation given; no answer (a failed request) fails."""
    expect = prompt.expect if isinstance(prompt, EvaluationPrompt) else prompt
    if answer is None:
        return False
    low = answer.lower()
    if expect.contains is not None and expect.contains.lower() not in low:
        return False
    if expect.not_contains is not None and expect.not_contains.lower() in low:
        return False
    if expect.regex is not None and re.search(expect.regex, answer) is None:
        return False
    if expect.reference is not None:
        floor = DEFAULT_MIN_ROUGE_L if expect.min_rouge_l is None else expect.min_rouge_l
        return rouge_l(answer, expect.reference) >= floor
    return True


def evaluation_pass_rate(
    prompts: Sequence[EvaluationPrompt], answers: Sequence[str | None]
) -> float | None:
    """Share of prompts answered as expected (answers in prompt order); None without prompts."""
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} evaluation prompts but {len(answers)} answers")
    if not prompts:
        return None
    passed = sum(score_evaluation_prompt(p, a) for p, a in zip(prompts, answers, strict=True))
    return passed / len(prompts)
