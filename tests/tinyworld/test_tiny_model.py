"""The tiny preset: its made-up world, corpus, tokenizer, shipped model and task files."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_config

from ift_tutorial.tinyworld.corpus import make_corpus, make_world, statements
from ift_tutorial.paths import DATA_DIR, TINY_MODEL_DIR
from ift_tutorial.tinyworld.pretrain import lr_at, load_pretrain_config, pack_documents, world_from_config
from ift_tutorial.tinyworld.tasks import (
    is_exact_match,
    make_tasks,
    normalize_answer,
    read_tasks,
    split_facts,
)
from ift_tutorial.tinyworld.tokenizer import CHAT_TEMPLATE, EOS, train_tokenizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def world():
    return world_from_config(load_pretrain_config())


@pytest.fixture(scope="module")
def small_tokenizer():
    w = make_world(seed=3, max_addend=5, n_words=20, n_people=20, n_cities=4)
    return train_tokenizer(make_corpus(w, 300, seed=3), vocab_size=400)


def test_world_is_a_function_of_the_seed():
    a, b, c = make_world(seed=1), make_world(seed=1), make_world(seed=2)
    assert a.all_facts() == b.all_facts()
    assert [f.key for f in a.facts["city"]] != [f.key for f in c.facts["city"]]
    assert make_corpus(a, 50, seed=1) == make_corpus(b, 50, seed=1)


def test_world_facts_are_correct_and_unique(world):
    for f in world.facts["addition"]:
        a, b = map(int, f.key.split("+"))
        assert int(f.answer) == a + b
    for f in world.facts["reversal"]:
        assert f.answer == f.key[::-1] and f.answer != f.key
    keys = [f.key for f in world.all_facts()]
    assert len(keys) == len(set(keys)) == 400 + 200 + 240
    assert {f.answer for f in world.facts["city"]} <= set(world.cities)


def test_corpus_is_statements_not_questions(world):
    docs = make_corpus(world, 2000, seed=0)
    assert not any("?" in d or "？" in d or "<|" in d for d in docs)
    fact = world.facts["city"][0]
    assert any(s in d for d in docs for s in statements(fact, "en") + statements(fact, "zh"))


def test_spaces_are_their_own_token(small_tokenizer):
    tok = small_tokenizer
    name = "Zokar"  # not in the corpus: several pieces, the same ones everywhere
    alone = tok(name, add_special_tokens=False)["input_ids"]
    for text in (f"{name} lives in X.", f"The home of {name}.", f"{name} 住在 X。"):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert any(ids[i:i + len(alone)] == alone for i in range(len(ids))), text
    assert tok.convert_ids_to_tokens(tok(" ", add_special_tokens=False)["input_ids"]) == ["Ġ"]
    assert tok.decode(tok("Bora 住在 Zandor。 12 + 3 = 15.")["input_ids"]) == "Bora 住在 Zandor。 12 + 3 = 15."


def test_chat_template_masks_the_answer_and_its_eos(small_tokenizer):
    tok = small_tokenizer
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 3?"},
            {"role": "assistant", "content": "5"}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == "<s><|system|>\nBe brief.\n<|user|>\n2 + 3?\n<|assistant|>\n5</s>\n"
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True,
                                  return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.convert_ids_to_tokens(masked) == ["5", EOS]
    prompt = tok.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>\n") and text.startswith(prompt)


def test_trl_accepts_the_template(small_tokenizer):
    from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

    assert has_generation_markers(CHAT_TEMPLATE)
    assert is_chat_template_stop_token_trained(small_tokenizer)


def test_pack_documents_rows(small_tokenizer):
    rows = pack_documents(["a b", "c d e"] * 20, small_tokenizer, seq_len=8)
    assert rows.shape[1] == 8 and rows.dtype == torch.long
    assert (rows == small_tokenizer.bos_token_id).sum() > 0
    assert lr_at(0, 1.0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_at(99, 1.0, 10, 100, 0.1) == pytest.approx(0.1, abs=1e-3)


# --- the shipped model -------------------------------------------------------------------


def test_shipped_tiny_model_folder():
    files = {p.name for p in TINY_MODEL_DIR.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt")) for name in files)
    cfg = json.loads((TINY_MODEL_DIR / "config.json").read_text())
    assert cfg["hidden_size"] % 64 == 0 and cfg["tie_word_embeddings"] is True
    assert (TINY_MODEL_DIR / "model.safetensors").stat().st_size < 20 * 2**20
    log = json.loads((TINY_MODEL_DIR / "pretrain_log.json").read_text())
    assert log["summary"]["last_loss"] < log["summary"]["first_loss"] / 3


def test_tiny_preset_linear_layers_are_4bit():
    import bitsandbytes as bnb

    from ift_tutorial.loading import load_model

    model = load_model(tiny_config().model)
    linears = {n: type(m) for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and n != "lm_head"}
    assert len(linears) == 7 * model.config.num_hidden_layers
    assert all(issubclass(t, bnb.nn.Linear4bit) for t in linears.values()), linears
    layer = model.model.layers[0].self_attn.q_proj
    assert layer.weight.quant_state.quant_type == "nf4"


def test_shipped_tokenizer_has_the_chat_template():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok.eos_token == EOS and tok.pad_token_id != tok.eos_token_id


# --- the task files ----------------------------------------------------------------------


def test_train_and_heldout_share_no_item(world):
    train_facts, heldout_facts = split_facts(world)
    assert not {(f.kind, f.key) for f in train_facts} & {(f.kind, f.key) for f in heldout_facts}
    train, heldout = read_tasks(DATA_DIR / "tasks/train.jsonl"), read_tasks(DATA_DIR / "tasks/heldout.jsonl")
    assert not {(r["task"], r["key"]) for r in train} & {(r["task"], r["key"]) for r in heldout}
    assert not {r["messages"][0]["content"] for r in train} & {r["messages"][0]["content"] for r in heldout}
    assert len(heldout) == 180
    assert {(r["task"], r["lang"]) for r in heldout} == {
        (t, lang) for t in ("addition", "reversal", "city") for lang in ("en", "zh")}


def test_task_files_are_what_the_generator_makes(world):
    train, heldout = make_tasks(world)
    assert read_tasks(DATA_DIR / "tasks/heldout.jsonl") == heldout
    assert read_tasks(DATA_DIR / "tasks/train.jsonl") == train


def test_exact_match_normalises_whitespace_only():
    assert normalize_answer("  Zandor \n") == "Zandor"
    assert is_exact_match(" 12 ", "12") and is_exact_match("a  b", "a b")
    assert not is_exact_match("Zandor.", "Zandor") and not is_exact_match("zandor", "Zandor")
    assert not is_exact_match("Zandor Zandor", "Zandor")


def test_read_tasks_names_line_and_field(tmp_path):
    from ift_tutorial.errors import DataError

    p = tmp_path / "bad.jsonl"
    p.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]}\n'
                 '{"messages": [{"role": "robot", "content": "hi"}]}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2, field 'messages\[0\]'"):
        read_tasks(p)
