"""Merging an adapter into a 16-bit (here fp32) reload of the base, and chatting with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import tiny_config
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from ift_tutorial import cli
from ift_tutorial.inference.generation import chat_loop, generate_cli
from ift_tutorial.loading import load_model, load_tokenizer
from ift_tutorial.paths import DATA_DIR


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def adapter_dir(tmp_path_factory, config) -> Path:
    """A LoRA adapter with non-zero B (as after training), saved as a PEFT folder."""
    torch.manual_seed(0)
    base = load_model(config.model)  # the real 4-bit base, as in training
    lora = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False,
                      task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)  # large enough to change the logits visibly
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    load_tokenizer(config.model).save_pretrained(out)
    return out


def _input_ids(config) -> torch.Tensor:
    tok = load_tokenizer(config.model)
    text = tok.apply_chat_template([{"role": "user", "content": "3 + 4 ="}], tokenize=False,
                                   add_generation_prompt=True)
    return tok(text, return_tensors="pt").input_ids


@torch.no_grad()
def test_merged_model_equals_base_plus_adapter(config, adapter_dir, tmp_path):
    assert cli.main(["merge", "--config", "tiny", "--adapter", str(adapter_dir),
                     "--output-dir", str(tmp_path / "merged")]) == 0
    merged_dir = tmp_path / "merged"
    assert (merged_dir / "model.safetensors").is_file()
    assert not list(merged_dir.glob("adapter_*"))  # a plain model folder: no peft needed
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    AutoTokenizer.from_pretrained(merged_dir)  # the tokenizer travels with the model

    ids = _input_ids(config)
    base = load_model(config.model, load_in_4bit=False, dtype=torch.float32)
    unmerged = PeftModel.from_pretrained(base, str(adapter_dir)).eval()
    reference = unmerged(ids).logits
    plain_base = load_model(config.model, load_in_4bit=False, dtype=torch.float32)(ids).logits
    got = merged(ids).logits
    torch.testing.assert_close(got, reference, atol=1e-4, rtol=1e-4)
    assert (got - plain_base).abs().max() > 1e-2  # the adapter did change the model

    # The tuned 4-bit model differs from the merged one only by NF4 rounding of W0.
    four_bit = PeftModel.from_pretrained(load_model(config.model), str(adapter_dir)).eval()
    gap = (four_bit(ids).logits - got).abs().max().item()
    assert gap < 0.25 * got.abs().max().item()


def test_merge_rejects_a_folder_that_is_not_an_adapter(tmp_path, capsys):
    assert cli.main(["merge", "--config", "tiny", "--adapter", str(tmp_path),
                     "--output-dir", str(tmp_path / "out")]) == 2
    assert "not a PEFT adapter folder" in capsys.readouterr().err


def test_generate_and_chat_use_the_adapter(config):
    # The shipped tuned adapter: it answers in a word where the base model rambles on.
    adapter = str(DATA_DIR / "adapters" / "tiny-sft")
    prompts = ["What is 7 + 8?", "Where does Bora live?", "Reverse the word kalo."]
    blocks = generate_cli(config, adapter, prompts, max_new_tokens=8)
    base_blocks = generate_cli(config, None, prompts, max_new_tokens=8)
    assert [b.split("\n")[0] for b in blocks] == [f"> {p}" for p in prompts]
    for tuned, base in zip(blocks, base_blocks):
        assert tuned != base, tuned  # every answer comes from the adapter, not the base

    def chat(adapter: str | None) -> list[str]:
        replies = iter(["What is 7 + 8?", "Where does Bora live?", ""])
        printed: list[str] = []
        assert chat_loop(config, adapter, max_new_tokens=8, input_fn=lambda _: next(replies),
                         print_fn=printed.append) == 0
        return [line.removeprefix("model> ") for line in printed if line.startswith("model> ")]

    answers, base_answers = chat(adapter), chat(None)
    assert len(answers) == 2  # two turns, then the empty line ends the chat
    assert answers[0] == blocks[0].split("\n", 1)[1]  # the same first conversation
    assert answers[0] != base_answers[0] and answers[1] != base_answers[1]


def test_merge_finds_a_project_relative_adapter_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # e.g. a notebook in book/chapters
    assert cli.main(["merge", "--config", "tiny", "--adapter", "data/adapters/tiny-sft",
                     "--output-dir", "merged"]) == 0
    assert (tmp_path / "merged" / "model.safetensors").is_file()
