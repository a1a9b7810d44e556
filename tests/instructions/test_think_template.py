"""The reasoning template (configs/chat_templates/think.jinja) used by chapter 11."""

from __future__ import annotations

import pytest
from trl.chat_template_utils import is_chat_template_stop_token_trained

from ift_tutorial.config import ModelSettings
from ift_tutorial.loading import load_tokenizer
from ift_tutorial.paths import CONFIGS_DIR, TINY_MODEL_DIR

THINK = str(CONFIGS_DIR / "chat_templates" / "think.jinja")
CONVERSATION = [
    {"role": "user", "content": "What is 7 + 5?"},
    {"role": "assistant", "content": "<think>\n7 + 3 = 10, 10 + 2 = 12.\n</think>\n\n12"},
    {"role": "user", "content": "And 6 + 8?"},
    {"role": "assistant", "content": "14", "reasoning_content": "6 + 4 = 10, 10 + 4 = 14."},
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(ModelSettings(name_or_path=str(TINY_MODEL_DIR), chat_template=THINK))


def test_reasoning_is_kept_in_the_last_turn_only(tokenizer):
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    assert text == (f"{bos}<|user|>\nWhat is 7 + 5?\n<|assistant|>\n12{eos}\n"
                    f"<|user|>\nAnd 6 + 8?\n<|assistant|>\n<think>\n6 + 4 = 10, 10 + 4 = 14.\n</think>\n\n14{eos}\n")


def test_inline_think_block_and_reasoning_field_render_the_same(tokenizer):
    inline = [CONVERSATION[0], {"role": "assistant", "content": "<think>\nr\n</think>\n\n12"}]
    field = [CONVERSATION[0], {"role": "assistant", "content": "12", "reasoning_content": "r"}]
    assert tokenizer.apply_chat_template(inline, tokenize=False) == tokenizer.apply_chat_template(field, tokenize=False)


def test_loss_covers_reasoning_answer_and_eos(tokenizer):
    out = tokenizer.apply_chat_template(CONVERSATION[2:], return_dict=True, return_assistant_tokens_mask=True)
    trained = tokenizer.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])
    assert trained == f"<think>\n6 + 4 = 10, 10 + 4 = 14.\n</think>\n\n14{tokenizer.eos_token}"
    assert is_chat_template_stop_token_trained(tokenizer)


def test_generation_prompt_with_and_without_thinking(tokenizer):
    history = CONVERSATION[:3]
    on = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    off = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True, enable_thinking=False)
    assert on.endswith("<|assistant|>\n") and "<think>" not in on  # earlier reasoning is dropped
    assert off == on + "<think>\n\n</think>\n\n"
