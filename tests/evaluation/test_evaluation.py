"""Greedy generation, exact match and perplexity on the tiny preset."""

from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import tiny_config

from ift_tutorial.evaluation.exact_match import exact_match
from ift_tutorial.evaluation.perplexity import assistant_labels, perplexity
from ift_tutorial.evaluation.report import (UnlikeShippedRun, before_after_table, before_after_values,
                                         compare_with_shipped,
                                         shipped_metrics)
from ift_tutorial.evaluation.runner import evaluate_config
from ift_tutorial.inference.generation import generate_responses, load_for_inference
from ift_tutorial.tinyworld.tasks import read_tasks

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return load_for_inference(tiny_config())


def test_batched_left_padded_generation_equals_one_by_one(model_and_tokenizer):
    model, tok = model_and_tokenizer
    convs = [[{"role": "user", "content": q}] for q in
             ("What is 3 + 4?", "Bora 住在哪个城市？", "Reverse the word kalo, please, and be quick.")]
    batched = generate_responses(model, tok, convs, max_new_tokens=6, batch_size=3)
    single = [generate_responses(model, tok, [c], max_new_tokens=6)[0] for c in convs]
    assert batched == single
    assert all(isinstance(a, str) and "<|" not in a and "</s>" not in a for a in batched)
    assert tok.padding_side == "left"


def test_exact_match_fraction():
    assert exact_match(["12", " Zandor ", "x"], ["12", "Zandor", "y"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        exact_match(["a"], ["a", "b"])


def test_perplexity_counts_assistant_tokens_only(model_and_tokenizer):
    model, tok = model_and_tokenizer
    conv = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "5"}]
    ids, labels = assistant_labels(tok, conv)
    assert [t for t in labels if t != -100] == [tok.convert_tokens_to_ids("5"), tok.eos_token_id]
    report = perplexity(model, tok, [conv, conv], batch_size=2)
    assert report["tokens"] == 4 and report["n"] == 2
    # The same number by hand: mean NLL of the two labelled tokens.
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    logp = torch.log_softmax(logits.float(), -1)
    nll = [-logp[i, t].item() for i, t in enumerate(labels[1:]) if t != -100]
    assert report["perplexity"] == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-4)


def test_evaluate_config_reports_and_skips(tmp_path):
    cfg = tiny_config("data.max_eval_examples=6", "data.eval_perplexity=null", "training.max_new_tokens=4")
    report = evaluate_config(cfg, adapter=None, output=str(tmp_path / "r.json"))
    assert report["answer_perplexity"] is None
    assert any("eval_perplexity is null" in s for s in report["skipped"])
    assert report["n_exact_match"] == 6 and "predictions" not in report
    # The score is the fraction of the saved predictions that equal their reference.
    saved = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    rows = saved["predictions"]
    assert len(rows) == 6 and saved["exact_match"] == report["exact_match"]
    heldout = read_tasks(cfg.data.eval_exact_match)[:6]  # the first 6 held-out questions
    assert [r["reference"] for r in rows] == [ex["messages"][-1]["content"] for ex in heldout]
    assert all(r["correct"] == (" ".join(r["prediction"].split()) == r["reference"]) for r in rows)
    assert report["exact_match"] == sum(r["correct"] for r in rows) / 6


def test_missing_adapter_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a PEFT adapter folder"):
        load_for_inference(tiny_config(), adapter=str(tmp_path))


def test_before_after_table():
    metrics = {
        "exact_match_before": 0.0, "exact_match_after": 0.8,
        "exact_match_by_task_before": {"city": 0.0, "city/en": 0.0, "lang:en": 0.0},
        "exact_match_by_task_after": {"city": 0.9, "city/en": 0.9, "lang:en": 0.8},
        "answer_perplexity_before": 1_032_067.4, "answer_perplexity_after": 20.0,
        "gsm8k_flexible_acc_before": None, "gsm8k_flexible_acc_after": 0.25,
        "ifeval_prompt_level_strict_acc_before": 0.5,
        "ifeval_prompt_level_strict_acc_after": 0.75,
        "ifeval_prompt_level_strict_acc_after_interval": [0.6, 0.87],
    }
    df = before_after_values(metrics)
    assert list(df.columns) == ["before", "after"]  # two measurements, no "change"
    assert df.loc["exact match: city", "after"] == 0.9
    assert "GSM8K strict" not in df.index  # not measured: no row
    shown = before_after_table(metrics)
    rows = dict(zip(shown.column("metric"), zip(shown.column("before"), shown.column("after"))))
    assert rows["exact match: city"] == ("0 %", "90 %")
    assert rows["exact match: en"] == ("0 %", "80 %")
    assert rows["answer-token perplexity"] == ("1.0 M", "20.0")
    assert rows["IFEval prompt-level strict"] == ("50 %", "75 % (60–87 %)")
    assert rows["GSM8K flexible"] == ("not measured at this scale", "25 %")
    assert "row_heading" not in shown.to_html()  # no pandas index on the page


# --- the shipped artefacts -------------------------------------------------------------


def test_base_model_knows_the_world_as_plain_text(model_and_tokenizer):
    """Completion probes (no chat template): the knowledge that tuning draws on."""
    from ift_tutorial.evaluation.exact_match import completion_accuracy
    from ift_tutorial.tinyworld.pretrain import load_pretrain_config, world_from_config
    from ift_tutorial.tinyworld.tasks import completion_probes, split_facts

    model, tok = model_and_tokenizer
    _, heldout = split_facts(world_from_config(load_pretrain_config()))
    report = completion_accuracy(model, tok, completion_probes(heldout))
    assert report["by_task"]["reversal"] >= 0.9 and report["by_task"]["city"] >= 0.8, report["by_task"]


def test_compare_with_shipped_passes_the_shipped_run_and_names_the_rows_out_of_tolerance():
    """What chapter 7 checks a fresh run with (the shipped scores themselves are re-measured
    in test_shipped_adapter.py)."""
    shipped = shipped_metrics("tiny")
    table = compare_with_shipped(shipped)
    assert table["within"].all() and (table["difference"] == 0).all()
    assert {"exact match", "exact match: reversal", "exact match: zh", "IFEval prompt-level strict",
            "GSM8K flexible", "answer-token perplexity"} <= set(table.index)
    assert "exact match: addition/en" not in table.index  # 30 questions: too few to compare
    assert table.loc["IFEval prompt-level strict", "tolerance"] == 100 / 16  # one prompt of 16
    worse = json.loads(json.dumps(shipped))
    worse["exact_match_by_task_after"]["reversal"] -= 0.2
    worse["answer_perplexity_after"] *= 1.5
    with pytest.raises(UnlikeShippedRun, match=r"(?s)reversal .*-20\.0.*perplexity") as caught:
        compare_with_shipped(worse)
    assert "exact match " not in str(caught.value)  # only the rows out of tolerance
    assert not compare_with_shipped(worse, check=False)["within"].all()
    with pytest.raises(ValueError, match="compared with"):
        compare_with_shipped({**shipped, "config": "qwen2.5-7b"}, shipped=shipped)


def test_generation_stops_on_the_templates_end_of_turn_token_too():
    """ChatML closes a turn with <|im_end|> while a base tokenizer's EOS is another token."""
    from ift_tutorial.inference.generation import stop_token_ids
    from ift_tutorial.config import ModelSettings
    from ift_tutorial.loading import load_tokenizer
    from ift_tutorial.paths import TINY_MODEL_DIR

    tok = load_tokenizer(ModelSettings(name_or_path=str(TINY_MODEL_DIR)))
    assert stop_token_ids(tok) == [tok.eos_token_id]
    tok.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert im_end != tok.eos_token_id
    assert stop_token_ids(tok) == [tok.eos_token_id, im_end]
