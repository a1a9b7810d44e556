"""Every 7B preset's chat template trains the end of a turn, and generation stops on it.

No download: each preset's tokenizer is played by the rehearsal's stand-in, the tiny
tokenizer plus the special tokens the real one defines (its BOS, EOS, pad and the tokens
its chat template writes), wearing the preset's real template.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import small_train_file
from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

from ift_tutorial.rehearsal import standins as rehearsal
from ift_tutorial.config import available_presets, load_config
from ift_tutorial.evaluation.perplexity import assistant_labels
from ift_tutorial.inference.generation import end_of_turn_token_id, stop_token_ids

PRESETS_7B = [p for p in available_presets() if p != "tiny"]


def stand_in_tokenizer(preset: str):
    """The tiny tokenizer with ``preset``'s special tokens (``rehearsal.HUB_TOKENIZERS``) and
    its training template, as ``load_tokenizer`` would apply it to the real one."""
    config = load_config(preset)
    hub_id = config.model.name_or_path
    assert rehearsal.hub_tokenizer(hub_id), f"{preset}: add the special tokens of {hub_id} to rehearsal"
    assert config.model.chat_template, f"{preset} names no training template (model.chat_template)"
    tok = rehearsal.stand_in_tokenizer(hub_id)
    tok.chat_template = Path(config.model.chat_template).read_text(encoding="utf-8")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # as load_tokenizer does
    return tok


CONVERSATION = [{"role": "user", "content": "2 + 3 ="}, {"role": "assistant", "content": "5"},
                {"role": "user", "content": "3 + 4 ="}, {"role": "assistant", "content": "7"}]


@pytest.mark.parametrize("preset", PRESETS_7B)
def test_template_trains_the_end_of_turn_and_generation_stops_on_it(preset):
    tok = stand_in_tokenizer(preset)
    assert has_generation_markers(tok.chat_template)
    assert is_chat_template_stop_token_trained(tok)  # what TRL checks before training

    end = end_of_turn_token_id(tok)
    assert end is not None and end in set(tok.get_added_vocab().values())
    assert end in stop_token_ids(tok) and tok.eos_token_id in stop_token_ids(tok)

    # TRL's mask: each answer is trained up to and including its end-of-turn token.
    out = tok.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    spans, start = [], None
    for i, m in enumerate([*mask, 0]):
        if m and start is None:
            start = i
        elif not m and start is not None:
            spans.append(ids[start:i])
            start = None
    assert len(spans) == 2, tok.decode(ids)
    for span, answer in zip(spans, ("5", "7")):
        assert end in span and tok.decode([t for t in span if t != end]).strip() == answer
    assert sum(mask) < len(ids) // 2  # the prompts are not trained

    # The same tokens get the loss in the perplexity evaluation.
    _, labels = assistant_labels(tok, CONVERSATION)
    assert [t for t in labels if t != -100] == [t for t, m in zip(ids, mask) if m]


def test_qwen_template_is_chatml_with_the_base_system_line():
    tok = stand_in_tokenizer("qwen2.5-7b")
    text = tok.apply_chat_template(CONVERSATION[:1], tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\n2 + 3 =<|im_end|>\n<|im_start|>assistant\n")
    # Qwen2.5 base: EOS is <|endoftext|>, a turn ends with <|im_end|>: both stop generation.
    assert stop_token_ids(tok)[:2] == tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])


def _tiny_qwen2(vocab_size: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    return Qwen2ForCausalLM(Qwen2Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=False))


def test_sft_trainer_trains_qwen_with_assistant_only_loss(tmp_path):
    """With the base template, TRL raised 'chat template is not training-compatible'."""
    from trl import SFTTrainer

    from ift_tutorial.planning.hardware import detect_precision
    from ift_tutorial.instructions.dataset import prepare_dataset
    from ift_tutorial.training.trainer import lora_config, sft_config

    train = small_train_file(tmp_path / "train.jsonl", 8)
    config = load_config("qwen2.5-7b", [f"data.train={train}", "training.max_steps=1",
                                        "training.per_device_train_batch_size=4",
                                        "training.gradient_checkpointing=false",
                                        "training.logging_steps=1", "training.save_steps=10"])
    tok = stand_in_tokenizer("qwen2.5-7b")
    dataset, _ = prepare_dataset(str(train), tok, max_length=config.model.max_length, strict=False)
    trainer = SFTTrainer(model=_tiny_qwen2(len(tok)), args=sft_config(config, tmp_path / "out",
                                                                       detect_precision("fp32")),
                         train_dataset=dataset, processing_class=tok, peft_config=lora_config(config))
    batch = next(iter(trainer.get_train_dataloader()))
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        trained = [t for t in labels if t != -100]
        # the answer's own <|im_end|> is trained; the system and user turns' are not
        assert trained.count(im_end) == 1 and ids.count(im_end) == 3
        assert tok.decode(trained[trained.index(im_end) + 1:]).strip() == ""  # at most "\n" after it
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert [e["loss"] > 0 for e in trainer.state.log_history if "loss" in e] == [True]


def test_generation_config_lists_eos_and_end_of_turn(tmp_path):
    """Adapter and merged folders get both stop ids: Qwen2.5 base's config names only EOS."""
    from transformers import GenerationConfig

    from ift_tutorial.inference.generation import save_generation_config

    tok = stand_in_tokenizer("qwen2.5-7b")
    base = GenerationConfig(bos_token_id=7, eos_token_id=tok.eos_token_id, do_sample=False,
                            max_new_tokens=2048)  # as in the base model's generation_config.json
    path = save_generation_config(tmp_path, tok, base)
    saved = GenerationConfig.from_pretrained(tmp_path)
    assert path.name == "generation_config.json"
    assert saved.eos_token_id == tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_end|>"])
    assert saved.pad_token_id == tok.pad_token_id
    assert (saved.bos_token_id, saved.max_new_tokens, saved.do_sample) == (7, 2048, False)  # kept
