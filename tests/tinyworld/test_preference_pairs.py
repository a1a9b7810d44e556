"""The tiny world's preference pairs: reproducible, split by fact, and each kind as described."""

from __future__ import annotations

import json
import re

from helpers import ROOT

from ift_tutorial.tinyworld.pretrain import load_pretrain_config, world_from_config
from ift_tutorial.tinyworld.preferences import REJECTED_KINDS, build_preference_files

SHIPPED = ROOT / "data" / "preferences"
HAN = re.compile("[\u4e00-\u9fff]")


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_regenerating_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    cfg = load_pretrain_config("pretrain-tiny")
    paths = build_preference_files(world_from_config(cfg), tmp_path,
                                   n_heldout=cfg["tasks_heldout_per_kind"], seed=cfg["seed"])
    for name, path in paths.items():
        assert path.read_bytes() == (SHIPPED / f"{name}.jsonl").read_bytes(), name


def test_held_out_pairs_ask_about_facts_sft_never_saw():
    sft = {(r["task"], r["key"]) for r in _rows(ROOT / "data" / "tasks" / "train.jsonl")}
    sft_heldout = {(r["task"], r["key"]) for r in _rows(ROOT / "data" / "tasks" / "heldout.jsonl")}
    train = {(r["task"], r["key"]) for r in _rows(SHIPPED / "train.jsonl")}
    heldout = _rows(SHIPPED / "heldout.jsonl")
    assert train == sft
    assert {(r["task"], r["key"]) for r in heldout} == sft_heldout
    assert not {(r["task"], r["key"]) for r in heldout} & sft
    # every held-out fact, in both languages, with every kind of rejected answer
    assert len(heldout) == len(sft_heldout) * 2 * len(REJECTED_KINDS)


def test_each_kind_of_rejected_answer_is_what_it_says():
    for row in _rows(SHIPPED / "heldout.jsonl"):
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
        assert chosen == row["answer"] != rejected
        kind = row["rejected_kind"]
        if kind == "wrong_fact":
            assert " " not in rejected.strip()  # another one-word answer
        elif kind == "runs_on":
            assert rejected.startswith(chosen + " ") and len(rejected) > len(chosen) + 3
        else:  # the right fact, stated in the other language
            assert chosen in rejected
            assert bool(HAN.search(rejected)) == (row["lang"] == "en")
