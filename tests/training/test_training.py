"""QLoRA training of the tiny preset: labels, a real run, resume, saved adapter, metrics."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import small_train_file, tiny_config

from ift_tutorial.paths import DATA_DIR
from ift_tutorial.tinyworld.tasks import read_tasks

torch.set_num_threads(1)


def _config(tmp_path, *overrides: str):
    """The tiny preset on a small slice of its data (96 conversations), sized for a test."""
    train = small_train_file(tmp_path / "train.jsonl", 96)
    return tiny_config(f"data.train={train}", "data.max_eval_examples=12",
                       "training.per_device_train_batch_size=8", "training.logging_steps=2",
                       "training.num_threads=1", "training.max_new_tokens=8", *overrides)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """Train 10 steps (checkpoint every 5), then run again to 20: the second run resumes."""
    from ift_tutorial.training.trainer import train

    tmp = tmp_path_factory.mktemp("run")
    out = tmp / "out"
    first = train(_config(tmp, "training.max_steps=10", "training.save_steps=5"), out, evaluate=False)
    second = train(_config(tmp, "training.max_steps=20", "training.save_steps=5"), out,
                   resume="auto", evaluate=True)
    return {"first": first, "second": second, "out": out, "config": _config(tmp)}


def test_labels_mask_the_prompt_and_keep_eos(tmp_path):
    """A real batch from the trainer's dataloader: only the answer and its EOS have labels."""
    from trl import SFTTrainer

    from ift_tutorial.planning.hardware import detect_precision
    from ift_tutorial.instructions.dataset import prepare_dataset
    from ift_tutorial.loading import load_model, load_tokenizer
    from ift_tutorial.training.trainer import lora_config, sft_config

    cfg = _config(tmp_path, "training.max_steps=1")
    tok = load_tokenizer(cfg.model)
    dataset, _ = prepare_dataset(cfg.data.train, tok, strict=False)
    trainer = SFTTrainer(model=load_model(cfg.model), args=sft_config(cfg, tmp_path / "o", detect_precision()),
                         train_dataset=dataset, processing_class=tok, peft_config=lora_config(cfg))
    batch = next(iter(trainer.get_train_dataloader()))
    assistant = tok.convert_tokens_to_ids("<|assistant|>")
    answers = {tuple(tok(r["messages"][-1]["content"], add_special_tokens=False)["input_ids"])
               for r in read_tasks(cfg.data.train)}
    for ids, labels, att in zip(batch["input_ids"].tolist(), batch["labels"].tolist(),
                                batch["attention_mask"].tolist()):
        start = ids.index(assistant) + 2  # the header, then "\n", then the answer
        end = ids.index(tok.eos_token_id, start)
        assert all(lab == -100 for lab in labels[:start])  # BOS, user turn, assistant header
        assert labels[start:end + 1] == ids[start:end + 1]  # the answer AND its EOS
        assert tuple(ids[start:end]) in answers
        assert all(lab == -100 for lab in labels[end + 1:])  # the newline after, padding
        assert sum(att) == len(ids) - ids.count(tok.pad_token_id)


def test_input_gradient_flows_after_an_eval_pass():
    """FINDINGS: an eval/no_grad pass must not switch 4-bit layers to a gradient-less kernel."""
    from ift_tutorial.inference.generation import generate_responses
    from ift_tutorial.loading import load_model, load_tokenizer

    cfg = tiny_config()
    model, tok = load_model(cfg.model), load_tokenizer(cfg.model)
    generate_responses(model, tok, [[{"role": "user", "content": "1 + 1"}]], max_new_tokens=2)
    layer = model.model.layers[0].self_attn.q_proj
    assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)
    model.train()
    x = torch.randn(2, 5, model.config.hidden_size, requires_grad=True)
    layer(x).sum().backward()  # the pytest config turns the no-autograd-kernel warning into an error
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_resume_continues_the_step_count(resumed_run):
    assert resumed_run["first"]["steps"] == 10 and resumed_run["first"]["resumed_from_step"] == 0
    assert resumed_run["second"]["steps"] == 20 and resumed_run["second"]["resumed_from_step"] == 10
    log = json.loads((resumed_run["out"] / "log.json").read_text())
    steps = [e["step"] for e in log if "loss" in e]
    assert steps[0] == 1 and steps[-1] == 20 and steps == sorted(set(steps))
    assert (resumed_run["out"] / "checkpoint-20" / "COMPLETE").is_file()


def test_loss_falls(resumed_run):
    log = json.loads((resumed_run["out"] / "log.json").read_text())
    losses = [e["loss"] for e in log if "loss" in e]
    assert sum(losses[-3:]) / 3 < 0.7 * losses[0], losses


def test_outputs_and_metrics(resumed_run):
    out, m = resumed_run["out"], resumed_run["second"]
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(m))
    for key in ("exact_match_before", "exact_match_after", "answer_perplexity_before",
                "answer_perplexity_after", "train_seconds", "peak_rss_mb", "steps",
                "exact_match_by_task_after", "n_ifeval", "n_gsm8k", "decoding", "data_sources"):
        assert m[key] is not None, key
    for key in ("ifeval_prompt_level_strict_acc", "ifeval_prompt_level_loose_acc",
                "ifeval_inst_level_strict_acc", "ifeval_inst_level_loose_acc",
                "gsm8k_flexible_acc", "gsm8k_strict_acc"):
        for when in ("before", "after"):
            assert 0 <= m[f"{key}_{when}"] <= 1, (key, when)
    # The tiny world's held-out conversations: answer tokens the model has words for. The base
    # model never saw the chat template's tokens (huge but finite); 20 steps teach the format.
    assert math.isfinite(m["answer_perplexity_before"])
    assert 1 < m["answer_perplexity_after"] < min(100, m["answer_perplexity_before"])
    assert m["n_perplexity"] == m["n_exact_match"] == m["n_ifeval"] == m["n_gsm8k"] == 12
    read, first = m["data_sources"]["answer_perplexity"]
    assert read.startswith("read ") and read.endswith("data/tasks/heldout.jsonl")
    assert first == "first 12 of 180 conversations"
    assert (out / "loss.png").stat().st_size > 1000
    adapter = out / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    assert (adapter / "tokenizer.json").is_file()
    assert not list(adapter.glob("*.bin"))
    # Each weight counted once (4-bit storage packs two per byte), from the architecture:
    c, r = resumed_run["config"], 16
    mc = json.loads((DATA_DIR / "tiny-llama" / "config.json").read_text())
    h, i, n = mc["hidden_size"], mc["intermediate_size"], mc["num_hidden_layers"]
    base = mc["vocab_size"] * h + n * (4 * h * h + 3 * h * i + 2 * h) + h  # tied head, 2 norms/layer
    adapter = n * r * (4 * (h + h) + 2 * (h + i) + (i + h))  # q k v o, gate up, down: r x (in + out)
    assert c.lora.r == r and mc["num_key_value_heads"] == mc["num_attention_heads"]
    assert (m["base_parameters"], m["adapter_parameters"]) == (base, adapter) == (2_080_512, 233_472)
    assert m["total_parameters"] == base + adapter and m["trainable_parameters"] == adapter
    answers = [json.loads(line) for line in (out / "gsm8k_answers.jsonl").open()]
    assert len(answers) == 12 and {"question", "target", "before", "after"} <= set(answers[0])


def test_saved_adapter_reproduces_the_trained_model(resumed_run):
    """Reloaded from disk, the adapter gives the same answers and perplexity as after training."""
    from ift_tutorial.evaluation.runner import evaluate_config

    out, m = resumed_run["out"], resumed_run["second"]
    cfg = resumed_run["config"]
    report = evaluate_config(cfg, adapter=str(out / "adapter"), output=str(out / "reload.json"))
    assert report["exact_match"] == m["exact_match_after"]
    assert report["answer_perplexity"] == pytest.approx(m["answer_perplexity_after"], rel=1e-5)
    saved = [json.loads(line)["after"] for line in (out / "predictions.jsonl").open()]
    reloaded = [p["prediction"] for p in json.loads((out / "reload.json").read_text())["predictions"]]
    assert reloaded == saved


def test_trainable_weights_are_fp32_on_cpu(tmp_path):
    """TRL casts LoRA weights of a quantised model to bf16; with fp32 compute we cast them back."""
    from peft import get_peft_model

    from ift_tutorial.loading import load_model
    from ift_tutorial.training.trainer import fp32_adapter, lora_config

    cfg = tiny_config()
    model = get_peft_model(load_model(cfg.model), lora_config(cfg))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.to(torch.bfloat16)
    assert fp32_adapter(model, torch.float32) > 0
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
