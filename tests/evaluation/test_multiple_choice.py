"""General ability by multiple choice (ift_tutorial.evaluation.multiple_choice): the questions,
their scoring by likelihood, the tiny world's set, and its place in the evaluation."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config, write_jsonl

from ift_tutorial.errors import DataError
from ift_tutorial.evaluation.multiple_choice import (ChoiceItem, evaluate_multiple_choice,
                                                     item_from_dict, option_tokens,
                                                     prompt_and_options, read_choice_set)
from ift_tutorial.evaluation.runner import multiple_choice_report
from ift_tutorial.inference.generation import load_for_inference
from ift_tutorial.paths import DATA_DIR

TINY_SET = DATA_DIR / "multiple_choice" / "tiny_world.jsonl"


@pytest.fixture(scope="module")
def tuned():
    """The tiny base model with the shipped adapter (switched off for the base model)."""
    torch.set_num_threads(1)  # a 2M-parameter model: more threads only wait for each other
    return load_for_inference(tiny_config(), "data/adapters/tiny-sft")


def test_items_take_mmlu_columns_and_name_what_is_wrong(tmp_path):
    item = item_from_dict({"question": "2 + 2 =", "choices": ["3", "4"], "answer": "B"})
    assert (item.answer, item.lang) == (1, "en")
    with pytest.raises(ValueError, match="^answer: "):
        item_from_dict({"question": "q", "choices": ["a", "b"], "answer": 2})
    bad = write_jsonl(tmp_path / "mc.jsonl", [
        {"question": "q", "choices": ["a", "b"], "answer": 0},
        {"question": "q", "choices": "a, b", "answer": 0}])
    with pytest.raises(DataError) as err:
        read_choice_set(str(bad))
    assert (err.value.line, err.value.field) == (2, "choices")


def test_prompt_formats():
    item = ChoiceItem("Which is even?", ["3", "4"], 1, "elementary_mathematics")
    prompt, options = prompt_and_options(item, "letters")
    assert prompt.startswith("The following are multiple choice questions (with answers) "
                             "about elementary mathematics.")
    assert prompt.endswith("A. 3\nB. 4\nAnswer:") and options == [" A", " B"]
    assert prompt_and_options(ChoiceItem("Bora lives in ", ["Zandor"], 0), "cloze") == (
        "Bora lives in", [" Zandor"])
    with pytest.raises(Exception, match="eval_multiple_choice_format"):
        prompt_and_options(item, "essay")


def test_an_option_is_scored_by_the_log_likelihood_of_its_tokens(tuned):
    model, tokenizer = tuned
    item = item_from_dict(next(iter(read_choice_set(str(TINY_SET))[0])).__dict__)
    report = evaluate_multiple_choice(model, tokenizer, [item], "cloze")
    prompt, options = prompt_and_options(item, "cloze")
    expected = []
    for option in options:  # the same number, from the whole logits of one sequence
        context, tokens = option_tokens(tokenizer, prompt, option)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([context + tokens])).logits[0].float()
        logprobs = torch.log_softmax(logits, -1)
        expected.append(sum(logprobs[len(context) - 1 + k, t].item() for k, t in enumerate(tokens)))
    assert report["results"][0]["logprobs"] == pytest.approx(expected, abs=1e-4)
    assert report["results"][0]["pick"] == max(range(len(expected)), key=expected.__getitem__)
    assert report["outcomes"] == [int(report["results"][0]["correct"])]


def test_the_tiny_world_set_is_what_its_generator_writes(tmp_path):
    from ift_tutorial.tinyworld.choices import build_choice_file
    from ift_tutorial.tinyworld.pretrain import load_pretrain_config, world_from_config

    config = load_pretrain_config()
    path = build_choice_file(world_from_config(config), tmp_path / "mc.jsonl",
                             n_heldout=config["tasks_heldout_per_kind"], seed=config["seed"])
    assert path.read_text(encoding="utf-8") == TINY_SET.read_text(encoding="utf-8")
    items, _ = read_choice_set(str(TINY_SET))
    assert {i.lang for i in items} == {"en", "zh"} and len(items) == 180


def test_tuning_costs_the_tiny_model_general_knowledge(tuned):
    """The forgetting chapter 8 shows with completions, measured without generating."""
    model, tokenizer = tuned
    config = tiny_config()
    with model.disable_adapter():
        before = multiple_choice_report(model, tokenizer, config)
    after = multiple_choice_report(model, tokenizer, config)
    assert before["n_mc"] == after["n_mc"] == len(after["outcomes"]["mc_acc"]) == 180
    assert before["mc_acc"] > 0.8 and after["mc_acc"] < before["mc_acc"] - 0.2
    skipped = multiple_choice_report(model, tokenizer, tiny_config("data.eval_multiple_choice=null"))
    assert skipped["mc_acc"] is None and skipped["skipped"]
