"""`make tiny-model` (``ift-tutorial pretrain``) rebuilds a working base model from scratch.

A few-step smoke run of the whole pipeline through the CLI: the made-up world, its
corpus, the tokenizer, pretraining and the task files, into a temporary folder, with
a small tokenizer corpus and a small model so that it takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
import torch
from helpers import tiny_config

from ift_tutorial import cli
from ift_tutorial.paths import DATA_DIR, TINY_MODEL_DIR

SMALL = [
    "training.max_steps=3", "training.batch_size=4", "training.seq_len=64",
    "training.log_every=1", "training.num_threads=1", "tokenizer.n_documents=500",
    "model.hidden_size=64", "model.num_hidden_layers=1", "model.num_attention_heads=2",
    "model.num_key_value_heads=2", "model.intermediate_size=128",
]


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")
            if p.is_file()}


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pretrain") / "tiny"
    shipped = {**_stamps(TINY_MODEL_DIR), **_stamps(DATA_DIR / "tasks")}
    argv = ["pretrain", "--output-dir", str(out)]
    for o in SMALL:
        argv += ["--set", o]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(argv) == 0
    summary = json.loads(buf.getvalue())
    # The shipped model and tasks are left alone: --output-dir gets its own copy of both.
    assert {**_stamps(TINY_MODEL_DIR), **_stamps(DATA_DIR / "tasks")} == shipped
    assert str(out.parent) not in buf.getvalue()  # no machine paths in what it prints
    return out, summary


def test_model_folder_loads(rebuilt) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    out, summary = rebuilt
    assert (out / "model.safetensors").is_file()
    assert not [p.name for p in out.iterdir() if p.suffix in {".bin", ".pt", ".pth"}]
    config = AutoConfig.from_pretrained(out)
    assert (config.hidden_size, config.num_hidden_layers) == (64, 1)  # the overrides took
    tok = AutoTokenizer.from_pretrained(out)
    assert config.vocab_size == len(tok) and config.eos_token_id == tok.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    assert sum(p.numel() for p in model.parameters()) == summary["parameters"]

    text = "Bora lives in Zandor. 12 + 7 = 19"
    ids = tok(text, add_special_tokens=False).input_ids
    assert tok.decode(ids) == text  # the tokenizer round-trips the corpus's kind of text
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True)
    assert "hi" in chat and chat != "hi"  # it ships a chat template for the tiny preset
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok)) and torch.isfinite(logits).all()


def test_pretraining_log_and_loss(rebuilt) -> None:
    out, summary = rebuilt
    log = json.loads((out / "pretrain_log.json").read_text(encoding="utf-8"))
    assert [e["step"] for e in log["log"]] == [1, 2, 3]
    vocab = json.loads((out / "config.json").read_text())["vocab_size"]
    # a random initialisation starts near the uniform guess: log(vocabulary size)
    assert abs(log["log"][0]["loss"] - math.log(vocab)) < 0.5
    assert all(math.isfinite(e["loss"]) for e in log["log"])
    assert summary["last_loss"] == log["log"][-1]["loss"] < summary["first_loss"]
    assert summary["tokens_seen"] == 3 * 4 * 64


def test_task_files_are_the_shipped_ones(rebuilt) -> None:
    # The tasks depend only on the world (its seed and sizes), not on the model: the
    # rebuild writes the very files the tiny preset ships.
    out, summary = rebuilt
    for name in ("train", "heldout"):
        path = out / "tasks" / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert rows and all(r["messages"][-1]["role"] == "assistant" for r in rows)
        assert path.read_bytes() == (DATA_DIR / "tasks" / f"{name}.jsonl").read_bytes()
    heldout = {r["key"] for r in map(json.loads, (out / "tasks" / "heldout.jsonl").open())}
    train = {r["key"] for r in map(json.loads, (out / "tasks" / "train.jsonl").open())}
    assert len(heldout) == 3 * 30 and not heldout & train  # held-out facts are never tuned on


def test_the_rebuilt_model_loads_as_a_4bit_base(rebuilt) -> None:
    import bitsandbytes as bnb

    from ift_tutorial.loading import load_model, load_tokenizer

    out, _ = rebuilt
    cfg = tiny_config(f"model.name_or_path={out}")
    model, tok = load_model(cfg.model), load_tokenizer(cfg.model)
    assert sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules()) == 7
    ids = tok("Bora lives in", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.isfinite(model(input_ids=ids).logits).all()
