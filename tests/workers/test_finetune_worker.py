"""finetune worker on the tiny GPT-2 from the local hub: LoRA, full, continued pretraining,
evaluation, thresholds, checkpoints and resume, Ray Train."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer
from safetensors.torch import load_file

from drover_workers.finetune.data import build_examples, read_rows
from drover_workers.finetune.model import load_tokenizer


def _config(tiny_gpt2, support_chat, out, **over):
    config = {
        "baseModelPath": str(tiny_gpt2),
        "dataset": {"path": str(support_chat / "train.jsonl"), "format": "chat"},
        "method": "lora",
        "lora": {"rank": 8, "alpha": 16, "dropout": 0.05},
        "hyperparameters": {
            "epochs": 3,
            "learningRate": 3e-3,
            "batchSize": 4,
            "maxSeqLength": 96,
            "seed": 7,
            "checkpointSteps": 5,
        },
        "outputDir": str(out),
    }
    for key, value in over.items():
        if key in ("hyperparameters", "lora"):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def _evaluation(support_chat, **thresholds):
    return {
        "dataset": {"path": str(support_chat / "eval.jsonl"), "format": "chat"},
        "metrics": ["loss", "perplexity", "bleu", "rougeL"],
        "thresholds": thresholds,
        "maxNewTokens": 20,
        "maxSamples": 3,
    }


def _logits(
    model, tokenizer, text="<|user|>\nHow do I get a refund?<|endoftext|>\n<|assistant|>\n"
):
    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt")).logits


TRACKING_TAGS = {"drover.dev/base-model": "tiny-gpt2", "drover.dev/base-digest": "sha256:base"}


def test_lora_lowers_loss_adapter_loads_back_and_evaluation_is_computed(
    tiny_gpt2, support_chat, tmp_path, run_inprocess, mlflow_server
):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tracking = {"uri": mlflow_server, "runName": "default/lora", "tags": TRACKING_TAGS}
    config = _config(
        tiny_gpt2,
        support_chat,
        tmp_path / "out",
        evaluation=_evaluation(support_chat, maxLoss=100.0, minRougeL=0.99),
        tracking=tracking,
    )
    run = run_inprocess("finetune", config)
    assert run.returncode == 0, run.stderr[-3000:]
    result = run.result
    assert result["steps"] == result["totalSteps"] == 15
    assert result["finalLoss"] < result["initialLoss"]
    assert any(p.get("phase") == "training" and "tokensPerSecond" in p for p in run.progress)
    out = Path(result["path"])
    assert result["adapter"] is True
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    manifest = json.loads((out / "drover-manifest.json").read_text())
    assert manifest["digest"] == result["digest"] and manifest["adapter"] is True

    tokenizer = load_tokenizer(str(tiny_gpt2))
    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    base_logits = _logits(base, tokenizer)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_gpt2), out).eval()
    assert not torch.allclose(base_logits, _logits(tuned, tokenizer), atol=1e-4)

    ev = result["evaluation"]
    assert math.isclose(ev["perplexity"], math.exp(ev["loss"]), rel_tol=1e-3)
    hyps = [e["generated"] for e in ev["examples"]]
    refs = [e["reference"] for e in ev["examples"]]
    assert ev["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-3)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = sum(
        scorer.score(r, h)["rougeL"].fmeasure for r, h in zip(refs, hyps, strict=True)
    ) / len(refs)
    assert ev["rougeL"] == pytest.approx(rouge, abs=1e-5)
    # thresholds: the loss one holds, the impossible ROUGE-L one fails; still exit 0
    assert result["passed"] is False
    assert result["failedThresholds"] == [f"minRougeL: {ev['rougeL']:.4g} < 0.99"]
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == result
    _assert_mlflow_run(mlflow_server, result, support_chat / "train.jsonl")


def _assert_mlflow_run(url: str, result: dict, dataset: Path) -> None:
    """The fine-tune is an MLflow run: its parameters, the loss at every step, the evaluation,
    the lineage tags the operator passed and the digests only the worker knows."""
    import hashlib

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=url)
    run = client.get_run(result["tracking"]["runId"])
    assert run.info.run_name == "default/lora" and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "drover"
    params = run.data.params
    assert params["method"] == "lora" and params["lora.rank"] == "8"
    assert params["hyperparameters.learningRate"] == "0.003"
    assert "tracking.uri" not in params
    losses = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in losses] == list(range(1, result["steps"] + 1))
    # finalLoss is the mean of the last five steps' losses, as TrainStats.as_result reports it.
    tail = [m.value for m in losses[-5:]]
    assert sum(tail) / len(tail) == pytest.approx(result["finalLoss"], abs=1e-3)
    assert losses[0].value == pytest.approx(result["initialLoss"], abs=1e-3)
    assert run.data.metrics["eval.perplexity"] == pytest.approx(result["evaluation"]["perplexity"])
    digest = "sha256:" + hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert result["datasetDigest"] == digest
    tags = run.data.tags
    assert {k: tags[k] for k in TRACKING_TAGS} == TRACKING_TAGS
    assert tags["drover.dev/dataset-digest"] == digest
    assert tags["drover.dev/output-digest"] == result["digest"]
    assert tags["drover.dev/evaluation-passed"] == "False"


def test_resume_after_a_crash_continues_from_the_checkpoint_and_matches_an_uninterrupted_run(
    tiny_gpt2, support_chat, tmp_path, run_inprocess
):
    hp = {"maxSteps": 6, "checkpointSteps": 2}
    straight = run_inprocess(
        "finetune", _config(tiny_gpt2, support_chat, tmp_path / "a", hyperparameters=hp)
    )
    assert straight.returncode == 0, straight.stderr[-3000:]

    config = _config(tiny_gpt2, support_chat, tmp_path / "b", hyperparameters=hp)
    crashed = run_inprocess("finetune", config, env={"DROVER_FAULT_FAIL_AT_STEP": "3"})
    assert crashed.returncode == 1
    assert crashed.result["reason"] == "FaultInjected"
    assert not (tmp_path / "b" / "model").exists()
    resumed = run_inprocess("finetune", config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.result["resumedFromStep"] == 2
    assert [p["step"] for p in resumed.progress if p.get("phase") == "resumed"] == [2]
    a = load_file(tmp_path / "a" / "model" / "adapter_model.safetensors")
    b = load_file(tmp_path / "b" / "model" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)
    assert resumed.result["digest"] == straight.result["digest"]


def test_full_finetune_and_lora_merge_save_full_weights_that_differ_from_the_base(
    tiny_gpt2, support_chat, tmp_path, run_inprocess
):
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(str(tiny_gpt2))
    base_logits = _logits(AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval(), tokenizer)
    for name, over in {"full": {"method": "full"}, "merged": {"merge": True}}.items():
        config = _config(
            tiny_gpt2,
            support_chat,
            tmp_path / name,
            hyperparameters={"maxSteps": 4, "learningRate": 1e-3},
            **over,
        )
        run = run_inprocess("finetune", config)
        assert run.returncode == 0, run.stderr[-3000:]
        out = Path(run.result["path"])
        assert run.result["adapter"] is False
        assert not (out / "adapter_config.json").exists()
        model = AutoModelForCausalLM.from_pretrained(out).eval()
        assert not torch.allclose(base_logits, _logits(model, tokenizer), atol=1e-4), name


def test_continued_pretraining_on_raw_text_lowers_the_loss(
    tiny_gpt2, support_chat, tmp_path, run_inprocess
):
    text = {"path": str(support_chat / "domain.txt"), "format": "text"}
    config = _config(
        tiny_gpt2,
        support_chat,
        tmp_path / "cpt",
        method="continued-pretraining",
        dataset=text,
        hyperparameters={"epochs": 4, "batchSize": 2, "maxSeqLength": 64},
        evaluation={"dataset": text, "metrics": ["loss", "perplexity"]},
    )
    run = run_inprocess("finetune", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result["finalLoss"] < run.result["initialLoss"]
    assert run.result["evaluation"]["perplexity"] > 1.0
    assert "bleu" not in run.result["evaluation"]
    assert run.result["passed"] is True


def test_chat_rows_use_the_chat_template_and_only_the_answer_is_trained(tiny_gpt2, support_chat):
    tokenizer = load_tokenizer(str(tiny_gpt2))
    rows = read_rows(support_chat / "train.jsonl", "chat")
    example = build_examples(tokenizer, rows[:1], "chat", 256)[0]
    assert example.prompt.endswith("<|assistant|>\n") and "<|user|>" in example.prompt
    trained = [
        t for t, label in zip(example.input_ids, example.labels, strict=True) if label != -100
    ]
    assert tokenizer.decode(trained) == rows[0]["messages"][-1]["content"] + "<|endoftext|>"
    pc = build_examples(
        tokenizer, [{"prompt": "Hi?", "completion": " Hello."}], "prompt-completion", 64
    )
    assert tokenizer.decode(
        [t for t, lab in zip(pc[0].input_ids, pc[0].labels, strict=True) if lab != -100]
    ) == (" Hello.<|endoftext|>")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"method": "continued-pretraining"}, "needs dataset.format: text"),
        (
            {"dataset": {"path": "/x.jsonl", "uri": "file:///x.jsonl"}},
            "dataset: Value error, set exactly one of path or uri",
        ),
        (
            {"hyperparameters": {"learningRate": 5}},
            "hyperparameters.learningRate: Input should be less",
        ),
        (
            {"evaluation": {"thresholds": {"minRouge": 0.3}}},
            "evaluation.thresholds.minRouge: unknown",
        ),
    ],
)
def test_bad_finetune_config_exits_2_naming_the_field(
    tiny_gpt2, support_chat, tmp_path, run_worker, change, expected
):
    run = run_worker("finetune", _config(tiny_gpt2, support_chat, tmp_path, **change))
    assert run.returncode == 2
    assert expected in run.result["error"], run.result
    assert "Traceback" not in run.stderr


def test_missing_dataset_file_fails_with_a_reason(tiny_gpt2, support_chat, tmp_path, run_inprocess):
    config = _config(
        tiny_gpt2,
        support_chat,
        tmp_path,
        dataset={"path": str(tmp_path / "no.jsonl"), "format": "chat"},
    )
    run = run_inprocess("finetune", config)
    assert run.returncode == 1
    assert run.result["reason"] == "DatasetNotFound" and "no.jsonl" in run.result["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a GPU-less host")
def test_gpus_the_torch_cannot_see_fail_the_job_instead_of_training_on_the_cpu(
    tiny_gpt2, support_chat, tmp_path, run_inprocess
):
    config = _config(tiny_gpt2, support_chat, tmp_path, gpusPerWorker=1)
    run = run_inprocess("finetune", config)
    assert run.returncode == 1
    assert run.result["reason"] == "GPUUnavailable", run.result
    assert "gpusPerWorker" in run.result["error"] and "CUDA workers image" in run.result["error"]


def test_dataset_from_the_hub_by_uri(hub, tiny_gpt2, support_chat, tmp_path, run_inprocess):
    uri = "hf://datasets/drover-local/support-chat@main/train-prompt-completion.jsonl"
    config = _config(
        tiny_gpt2,
        support_chat,
        tmp_path,
        dataset={"uri": uri, "format": "prompt-completion"},
        hyperparameters={"maxSteps": 2},
        hfEndpoint=hub.url,
    )
    run = run_inprocess("finetune", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result["steps"] == 2


@pytest.mark.slow
def test_ray_train_with_one_worker_trains_and_saves(
    tiny_gpt2, support_chat, tmp_path, run_inprocess, ray_local
):
    config = _config(
        tiny_gpt2,
        support_chat,
        tmp_path,
        distributed="ray",
        workers=1,
        hyperparameters={"maxSteps": 3, "checkpointSteps": 2},
        evaluation=_evaluation(support_chat, maxLoss=50.0),
    )
    run = run_inprocess("finetune", config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.result["steps"] == 3
    # Evaluated in a Ray task (on a worker's devices), not in the driver.
    assert run.result["evaluation"]["loss"] > 0 and run.result["passed"] is True
    assert (Path(run.result["path"]) / "adapter_model.safetensors").is_file()
    assert (tmp_path / "checkpoints" / "step-00000003" / "state.pt").is_file()
    assert any(p.get("phase") == "training" for p in run.progress)


def test_max_samples_bounds_the_loss_and_the_answers_alike(tiny_gpt2, support_chat):
    from transformers import AutoModelForCausalLM

    from drover_workers.finetune.config import Evaluation
    from drover_workers.finetune.evaluate import eval_loss, evaluate

    tokenizer = load_tokenizer(str(tiny_gpt2))
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt2).eval()
    rows = read_rows(support_chat / "eval.jsonl", "chat")
    examples = build_examples(tokenizer, rows, "chat", 96)
    assert len(examples) > 2
    spec = Evaluation.model_validate({"metrics": ["loss", "bleu"], "maxSamples": 2})
    metrics = evaluate(model, tokenizer, examples, spec, batch_size=4)
    assert metrics["samples"] == 2 and len(metrics["examples"]) == 2
    first_two = eval_loss(model, examples[:2], tokenizer.pad_token_id, 4)
    assert metrics["loss"] == pytest.approx(first_two, abs=1e-6)
    assert metrics["loss"] != pytest.approx(eval_loss(model, examples, tokenizer.pad_token_id, 4))
