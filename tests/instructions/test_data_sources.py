"""Hub sources: parsing, column mapping, filter and sample, fixtures offline, licences of the presets."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import yaml

from ift_tutorial.config import ConfigError, available_presets, load_config
from ift_tutorial.errors import DataError
from ift_tutorial.instructions.dataset import check_data, load_conversations
from ift_tutorial.instructions.formats import CONVERSATION_FIELDS
from ift_tutorial.paths import CONFIGS_DIR, DATA_DIR
from ift_tutorial.instructions.sources import (
    HubSource,
    SourceError,
    hub_source,
    parse_sources,
    read_hub_rows,
    seeded_subset,
)

AYA = DATA_DIR / "fixtures" / "aya_train.jsonl"
#: Licences that allow derived models, commercial use included.
PERMISSIVE = {"Apache-2.0", "MIT", "CC-BY-4.0", "CC0-1.0"}


def _aya(**changes) -> HubSource:
    raw = {"hub": "CohereLabs/aya_dataset", "split": "train", "fixture": str(AYA),
           "columns": {"prompt": "inputs", "completion": "targets"},
           "where": {"language_code": ["eng", "zho"], "annotation_type": "original-annotations"}}
    return hub_source({**raw, **changes}, "data.train")


def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --- parsing ------------------------------------------------------------------------------


def test_a_hub_mapping_becomes_a_hub_source_and_bad_keys_are_named():
    source = _aya(sample=5, seed=3, revision="a" * 40)
    assert (source.hub, source.sample, source.seed, source.columns["completion"]) == (
        "CohereLabs/aya_dataset", 5, 3, "targets")
    assert source.label() == "CohereLabs/aya_dataset @aaaaaaa, split train"
    with pytest.raises(SourceError, match=r"data.train: unknown key\(s\) \['colums'\]"):
        hub_source({"hub": "a/b", "colums": {}}, "data.train")
    with pytest.raises(SourceError, match="data.train.hub: expected a hub dataset id"):
        hub_source({"split": "train"}, "data.train")
    with pytest.raises(SourceError, match="data.train.columns: expected a mapping"):
        hub_source({"hub": "a/b", "columns": ["inputs"]}, "data.train")
    with pytest.raises(SourceError, match="data.train.sample: expected a positive integer"):
        hub_source({"hub": "a/b", "sample": 0}, "data.train")
    with pytest.raises(SourceError, match="data.train.where.lang: expected a value or a list"):
        hub_source({"hub": "a/b", "where": {"lang": []}}, "data.train")
    assert parse_sources("x.jsonl", "k") == ["x.jsonl"] and parse_sources(None, "k") is None


def test_yaml_hub_source_resolves_its_fixture_next_to_the_file(tmp_path):
    (tmp_path / "fix.jsonl").write_text(AYA.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "sub").mkdir()
    cfg_file = tmp_path / "sub" / "run.yaml"
    cfg_file.write_text(yaml.safe_dump({"base": "tiny", "data": {
        "train": {"hub": "CohereLabs/aya_dataset", "fixture": "../fix.jsonl",
                  "columns": {"prompt": "inputs", "completion": "targets"}},
        "eval_ifeval": ["../fix.jsonl", {"hub": "google/IFEval", "fixture": "ifeval.jsonl"}]}}))
    cfg = load_config(str(cfg_file), ["data.train.sample=3"])
    assert isinstance(cfg.data.train, HubSource) and cfg.data.train.sample == 3
    assert cfg.data.train.fixture == str(tmp_path / "fix.jsonl")
    assert cfg.data.eval_ifeval[0] == str(tmp_path / "fix.jsonl")
    assert cfg.data.eval_ifeval[1].fixture == str(tmp_path / "sub" / "ifeval.jsonl")
    assert cfg.to_dict()["data"]["train"]["hub"] == "CohereLabs/aya_dataset"
    cfg_file.write_text(yaml.safe_dump({"base": "tiny", "data": {"train": {"hub": "a/b", "spilt": "x"}}}))
    with pytest.raises(ConfigError, match=r"run.yaml: data.train: unknown key\(s\) \['spilt'\]"):
        load_config(str(cfg_file))


# --- reading: mapping, filter, sample, errors --------------------------------------------


def test_fixture_is_read_offline_through_filter_sample_and_mapping(monkeypatch):
    _offline(monkeypatch)
    rows = [json.loads(line) for line in AYA.read_text(encoding="utf-8").splitlines()]
    kept = [r for r in rows if r["language_code"] in ("eng", "zho")
            and r["annotation_type"] == "original-annotations"]
    convs = load_conversations(_aya())
    assert [c[0]["content"] for c in convs] == [r["inputs"] for r in kept]
    assert [c[1] for c in convs[:1]] == [{"role": "assistant", "content": kept[0]["targets"]}]
    sampled = load_conversations(_aya(sample=4, seed=1))
    assert [c[0]["content"] for c in sampled] == [r["inputs"] for r in seeded_subset(kept, 4, 1)]
    report = check_data(_aya(sample=4, seed=1), strict=False)
    assert report.n_kept == 4 and report.ignored_fields == ["annotation_type", "language",
                                                            "language_code", "user_id"]
    text = str(report)
    assert "source: HF_HUB_OFFLINE=1: read the local fixture" in text
    assert "instead of CohereLabs/aya_dataset, split train (24 rows)" in text
    assert f"{len(kept)} of 24 rows kept, {24 - len(kept)} left out" in text
    assert f"sample: 4 of {len(kept)} rows (seed 1)" in text
    assert "/work/" not in text and "/tmp/" not in text


def test_rehearsal_reads_the_fixture_too_and_offline_without_a_fixture_is_an_error(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    # A rehearsal marks its preset's hub sources offline where it makes the config
    # (ift_tutorial.rehearsal.preset); such a source reads its fixture, with no variable set.
    assert "offline: true (a rehearsal reads fixtures): read the local fixture" in str(
        check_data(_aya(offline=True)))
    with pytest.raises(SourceError, match=r"data.train.offline: expected true or false"):
        _aya(offline="yes")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"offline \(HF_DATASETS_OFFLINE=1\) and this hub source "
                                        "has no fixture"):
        load_conversations(_aya(fixture=None))


def test_a_missing_column_or_an_unknown_field_is_named(monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(DataError, match=r"field 'target': columns: completion <- 'target': no "
                                        r"column 'target' in the data; its columns: \["):
        load_conversations(_aya(columns={"prompt": "inputs", "completion": "target"}))
    with pytest.raises(DataError, match=r"field 'answer': columns: 'answer' is not a field this "
                                        "data can be mapped to"):
        load_conversations(_aya(columns={"prompt": "inputs", "answer": "targets"}))
    with pytest.raises(DataError, match="where: no column 'lang' in the data"):
        load_conversations(_aya(where={"lang": "en"}))
    with pytest.raises(DataError, match="no row passes the filter"):
        load_conversations(_aya(where={"language_code": "xyz"}))
    # Without a mapping the aya columns match no format: the loader says which fields it needs.
    with pytest.raises(DataError, match="cannot tell the format from the fields"):
        load_conversations(_aya(columns={}))


def test_online_the_pinned_split_is_loaded_and_goes_through_the_same_steps(monkeypatch):
    """No download: datasets.load_dataset is replaced by a fake that records its arguments."""
    import datasets

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "IFT_REHEARSAL"):
        monkeypatch.delenv(name, raising=False)
    rows = [json.loads(line) for line in AYA.read_text(encoding="utf-8").splitlines()]
    calls = []

    def fake_load_dataset(path, name=None, split=None, revision=None):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    source = _aya(revision="f" * 40, config="default", sample=3, seed=0)
    read = read_hub_rows(source, CONVERSATION_FIELDS)
    assert calls == [("CohereLabs/aya_dataset", "default", "train", "f" * 40)]
    assert read.unit == "record" and read.path == source.label()
    assert read.notes[0] == f"read {source.label()} from the hub (24 rows)"
    assert [set(r) >= {"prompt", "completion"} and "inputs" not in r for _, r in read.records] == [True] * 3
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = [r for _, r in read_hub_rows(source, CONVERSATION_FIELDS).records]
    assert offline == [r for _, r in read.records]  # same filter and sample: same rows
    monkeypatch.delenv("HF_HUB_OFFLINE")
    bad = dataclasses.replace(source, columns={"prompt": "inputs", "completion": "outputs"})
    with pytest.raises(DataError, match=r"CohereLabs/aya_dataset .*field 'outputs'"):
        load_conversations(bad)


def test_ifeval_and_gsm8k_hub_sources_read_their_fixtures(monkeypatch):
    from ift_tutorial.evaluation.gsm8k import read_gsm8k_set
    from ift_tutorial.evaluation.ifeval.scoring import read_ifeval_prompts, read_ifeval_set

    _offline(monkeypatch)
    cfg = load_config("qwen2.5-7b")
    prompts, notes = read_ifeval_set(cfg.data.eval_ifeval[1])
    by_key = {p.key: p for p in read_ifeval_prompts() if p.lang == "en"}
    assert len(prompts) == 20 and "read the local fixture" in notes[0]
    assert all(p.kwargs == by_key[p.key].kwargs and p.prompt == by_key[p.key].prompt for p in prompts)
    lines = [json.loads(line) for line in (DATA_DIR / "fixtures/ifeval.jsonl").open(encoding="utf-8")]
    assert all(len(kw) == 24 for line in lines for kw in line["kwargs"])  # the hub's null-filled kwargs
    problems, notes = read_gsm8k_set(cfg.data.eval_gsm8k)
    assert len(problems) == 30 and "instead of openai/gsm8k (main) @cc7b047, split test" in notes[0]


def test_evaluation_subsets_are_seeded_and_capped(monkeypatch):
    from ift_tutorial.evaluation.runner import _subset

    notes: list[str] = []
    items = list(range(100))
    assert _subset(items, 10, None, 0, "prompts", notes) == seeded_subset(items, 10, 0)
    assert len(_subset(items, 10, 4, 0, "prompts", notes)) == 4
    assert _subset(items, None, None, 0, "prompts", notes) == items
    assert notes == ["10 of 100 prompts (seeded subset, seed 0)", "4 of 100 prompts (seeded subset, seed 0)"]


# --- the presets ---------------------------------------------------------------------------------


def _hub_sources(cfg):
    d = cfg.data
    for key, value in [("train", d.train), ("eval_perplexity", d.eval_perplexity),
                       ("eval_gsm8k", d.eval_gsm8k)] + [
            (f"eval_ifeval[{i}]", v) for i, v in enumerate(d.eval_ifeval or [])]:
        if isinstance(value, HubSource):
            yield key, value


@pytest.mark.parametrize("preset", sorted(set(available_presets()) - {"tiny"}))
def test_every_hub_source_of_a_7b_preset_is_pinned_licensed_and_has_a_fixture(preset, monkeypatch):
    _offline(monkeypatch)
    cfg = load_config(preset)
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    sources = dict(_hub_sources(cfg))
    assert {"train", "eval_perplexity", "eval_gsm8k", "eval_ifeval[1]"} <= set(sources)
    for key, source in sources.items():
        assert source.licence in PERMISSIVE, (preset, key, source.licence)
        assert re.fullmatch(r"[0-9a-f]{40}", source.revision or ""), (preset, key)
        assert source.hub in readme and source.revision in readme and source.licence in readme
        rows = [json.loads(line) for line in open(source.fixture, encoding="utf-8")]
        columns = set().union(*rows)
        assert set(source.columns.values()) | set(source.where) <= columns, (preset, key)
    # the licence is also said in the preset file's own words
    text = (CONFIGS_DIR / f"{preset}.yaml").read_text(encoding="utf-8")
    assert "licence: Apache-2.0" in text and "licence: MIT" in text
    # the time arithmetic: max_steps follows from the sample and the effective batch
    t = cfg.training
    assert t.max_steps == cfg.data.train.sample // (t.per_device_train_batch_size
                                                    * t.gradient_accumulation_steps)
    assert t.max_steps % t.save_steps == 0 and f"max_steps = {cfg.data.train.sample} / " in text
    # offline, training data comes from the fixture and the report says so
    report = check_data(cfg.data.train, strict=False)
    assert report.n_kept == 20 and "read the local fixture" in report.notes[0]
    assert cfg.data.eval_exact_match is None  # the made-up world is the tiny model's


def test_the_tiny_preset_keeps_its_own_world():
    cfg = load_config("tiny")
    assert all(isinstance(v, str) for v in [cfg.data.train, cfg.data.eval_perplexity,
                                            cfg.data.eval_gsm8k, *cfg.data.eval_ifeval])
    assert cfg.data.eval_perplexity.endswith("data/tasks/heldout.jsonl")
