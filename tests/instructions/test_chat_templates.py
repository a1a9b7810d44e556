"""The instruction templates shipped for base tokenizers without a usable one (Llama 3.1, OLMo 2)."""

from __future__ import annotations

import pytest
from trl.chat_template_utils import is_chat_template_stop_token_trained

from ift_tutorial.config import ModelSettings, load_config
from ift_tutorial.errors import UserFacingError
from ift_tutorial.loading import load_tokenizer
from ift_tutorial.paths import CONFIGS_DIR, TINY_MODEL_DIR

TEMPLATE = str(CONFIGS_DIR / "chat_templates" / "llama2_inst.jinja")
TULU = str(CONFIGS_DIR / "chat_templates" / "tulu.jinja")


@pytest.fixture()
def tokenizer():
    """The tiny tokenizer (it has BOS and EOS) wearing the Llama 2 template."""
    return load_tokenizer(ModelSettings(name_or_path=str(TINY_MODEL_DIR), chat_template=TEMPLATE))


def test_renders_the_llama2_instruction_format(tokenizer):
    bos, eos = tokenizer.bos_token, tokenizer.eos_token
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 3 ="},
                {"role": "assistant", "content": "5"}, {"role": "user", "content": "3 + 4 ="}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == (f"{bos}[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n2 + 3 = [/INST] 5{eos}"
                    f"{bos}[INST] 3 + 4 = [/INST]")


def test_loss_mask_covers_the_answer_and_eos_only(tokenizer):
    messages = [{"role": "user", "content": "2 + 3 ="}, {"role": "assistant", "content": "5"}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    answer = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert answer[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(answer, skip_special_tokens=True).strip() == "5"
    assert sum(out["assistant_masks"]) < len(out["input_ids"]) // 2  # the prompt is not trained
    assert is_chat_template_stop_token_trained(tokenizer)


@pytest.mark.parametrize("preset, template", [("llama-3.1-8b", TEMPLATE), ("olmo-2-7b", TULU)])
def test_base_presets_without_a_template_name_one(preset, template):
    assert load_config(preset).model.chat_template == template


def test_tulu_template_renders_the_olmo2_instruct_format():
    tok = load_tokenizer(ModelSettings(name_or_path=str(TINY_MODEL_DIR), chat_template=TULU))
    messages = [{"role": "user", "content": "2 + 3 ="}, {"role": "assistant", "content": "5"},
                {"role": "user", "content": "3 + 4 ="}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    eos = tok.eos_token
    assert text == f"{tok.bos_token}<|user|>\n2 + 3 =\n<|assistant|>\n5{eos}\n<|user|>\n3 + 4 =\n<|assistant|>\n"
    out = tok.apply_chat_template(messages[:2], return_dict=True, return_assistant_tokens_mask=True)
    answer = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert answer[-1] == tok.eos_token_id and tok.decode(answer, skip_special_tokens=True) == "5"
    assert is_chat_template_stop_token_trained(tok)


def test_a_missing_template_file_is_a_clear_error():
    with pytest.raises(UserFacingError, match="no-such.jinja"):
        load_tokenizer(ModelSettings(name_or_path=str(TINY_MODEL_DIR), chat_template="no-such.jinja"))


def test_a_tokenizer_without_template_and_no_setting_is_a_clear_error(tmp_path):
    import shutil

    folder = tmp_path / "no-template"
    shutil.copytree(TINY_MODEL_DIR, folder, ignore=shutil.ignore_patterns("chat_template.jinja"))
    with pytest.raises(UserFacingError, match="has no chat template: set model.chat_template"):
        load_tokenizer(ModelSettings(name_or_path=str(folder)))
