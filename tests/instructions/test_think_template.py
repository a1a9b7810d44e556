"""The reasoning template (configs/chat_templates/think.jinja) used by chapter 11."""

from __future__ import annotations

import pytest
from trl.chat_template_utils import is_chat_template_stop_token_trained

from ift_tutorial.config import ModelSettings
from ift_tutorial.inference.generation import end_of_turn_token_id
from ift_tutorial.instructions.turns import one_sample_per_turn, split_turns
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


def trained_text(tokenizer, conversation) -> str:
    out = tokenizer.apply_chat_template(conversation, return_dict=True,
                                        return_assistant_tokens_mask=True)
    return tokenizer.decode([t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m])


def test_an_earlier_answer_without_its_reasoning_is_never_trained(tokenizer):
    # The first answer, "12", is in the history without its reasoning: a target there would
    # teach the model to answer without thinking. Only the last turn is trained.
    assert trained_text(tokenizer, CONVERSATION) == (
        f"<think>\n6 + 4 = 10, 10 + 4 = 14.\n</think>\n\n14{tokenizer.eos_token}")


def test_one_sample_per_turn_trains_every_turn_with_its_own_reasoning(tokenizer):
    samples = one_sample_per_turn(CONVERSATION)
    assert [len(s) for s in samples] == [2, 4]
    eos = tokenizer.eos_token
    assert [trained_text(tokenizer, s) for s in samples] == [
        f"<think>\n7 + 3 = 10, 10 + 2 = 12.\n</think>\n\n12{eos}",
        f"<think>\n6 + 4 = 10, 10 + 4 = 14.\n</think>\n\n14{eos}"]
    expanded, added = split_turns([CONVERSATION, CONVERSATION[:2]])
    assert len(expanded) == 3 and added == 1


def test_the_end_of_a_turn_is_still_found(tokenizer):
    # A history that ends with the user is no training sample: the end-of-turn check of the
    # package (and TRL's) still sees EOS close an assistant turn.
    assert end_of_turn_token_id(tokenizer) == tokenizer.eos_token_id
    assert is_chat_template_stop_token_trained(tokenizer)
