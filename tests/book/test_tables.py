"""The chapters' tables and curated printouts: numbers for people, headers by edition."""

from __future__ import annotations

import math

import pytest
import torch

from ift_tutorial.book.printouts import (show_answers, show_config, show_run_folder,
                                         show_source, show_tokens)
from ift_tutorial.book.tables import NOT_MEASURED, format_cell, key_value_table, table
from ift_tutorial.i18n import set_edition


@pytest.fixture
def chinese(monkeypatch):
    monkeypatch.delenv("IFT_LANG", raising=False)
    set_edition("zh")
    yield
    set_edition(None)


@pytest.fixture
def english(monkeypatch):
    monkeypatch.delenv("IFT_LANG", raising=False)
    set_edition("en")
    yield
    set_edition(None)


@pytest.mark.parametrize("value, style, text", [
    (0.756, "percent", "76 %"),
    ((0.756, 0.68, 0.83), "percent_interval", "76 % (68–83 %)"),
    ({"value": 0.5, "low": 0.25, "high": 0.75}, "percent_interval", "50 % (25–75 %)"),
    (0.756, "percent_interval", "76 %"),
    ((1_032_065.9, 1.5934), "perplexity", "1.0 M → 1.59"),
    (41.27, "perplexity", "41.3"),
    (2_162_688, "count", "2.2 M"),
    (132, "seconds", "2 min 12 s"),
    (3_500_000, "bytes", "3.3 MiB"),
    (True, "plain", "✓"),
    (0.123456789, "plain", "0.123"),
])
def test_each_style_writes_numbers_for_people(value, style, text, english):
    assert format_cell(value, style) == text


@pytest.mark.parametrize("missing", [None, math.nan])
def test_a_missing_value_is_explained_not_nan(missing, english):
    assert format_cell(missing, "percent") == NOT_MEASURED
    assert format_cell((missing, missing), "perplexity") == NOT_MEASURED


def test_an_unknown_style_or_column_is_a_clear_error(english):
    with pytest.raises(ValueError, match="unknown table style 'percents'"):
        format_cell(0.5, "percents")
    with pytest.raises(ValueError, match="not shown: score"):
        table([{"a": 1}], columns=["a"], styles={"score": "percent"})


def test_a_table_has_no_index_and_wraps_within_the_page(english):
    tab = table([{"metric": "exact match", "score": 0.756},
                 {"metric": "GSM8K strict", "score": None}],
                columns={"metric": "metric", "score": "after"},
                styles={"metric": "label", "score": "percent"})
    html = tab._repr_html_()
    assert "row_heading" not in html and "NaN" not in html and "None" not in html
    assert "max-width" in html and "overflow-wrap" in html
    assert tab.column("after") == ["76 %", NOT_MEASURED]


def test_headers_and_labels_follow_the_edition(chinese):
    tab = table([{"metric": "exact match", "score": None}],
                columns={"metric": "metric", "score": "after"}, styles={"metric": "label"})
    assert list(tab.frame.columns) == ["指标", "微调后"]
    assert tab.frame.iloc[0].tolist() == ["精确匹配", "此规模下未测量"]
    # a name with no Chinese entry stays as it is, without a warning
    assert list(table([{"x": 1}], columns={"x": "qwen2.5-7b"}).frame.columns) == ["qwen2.5-7b"]


def test_key_value_table_formats_each_row(english):
    tab = key_value_table({"training time": 132.0, "all parameters": 2_313_984},
                          styles={"training time": "seconds", "all parameters": "count"})
    assert tab.column("value") == ["2 min 12 s", "2.3 M"]


def test_show_config_picks_what_matters_in_plain_words(english):
    from peft import LoraConfig
    from transformers import BitsAndBytesConfig

    from ift_tutorial.planning.hardware import Precision

    bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                             bnb_4bit_use_double_quant=True,
                             bnb_4bit_compute_dtype=torch.float16)
    rows = dict(zip(show_config(bnb).column("setting"), show_config(bnb).column("value")))
    assert rows["4-bit data type"] == "nf4" and rows["compute dtype"] == "float16"
    assert rows["double quantisation"] == "yes" and len(rows) == 5  # not twenty keys
    lora = show_config(LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    assert "rank r" in lora.column("setting") and "all-linear" in lora.column("value")
    cpu = Precision(device="cpu", compute_dtype=torch.float32, bf16=False, fp16=False,
                    optim="adamw_torch")
    assert show_config(cpu).column("value") == ["cpu", "float32", "no", "no", "adamw_torch"]
    with pytest.raises(KeyError, match="has no setting rank"):
        show_config(cpu, keys=["rank"])


def test_show_run_folder_lists_parts_not_files(tmp_path, english):
    (tmp_path / ".lock").write_text("123")
    for step in (300, 400):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "optimizer.pt").write_bytes(b"0" * 4096)
        (folder / "COMPLETE").touch()
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_model.safetensors").write_bytes(b"0" * 2048)
    (tmp_path / "metrics.json").write_text('{"adapter_sha256": "0c3b8cf4"}')
    tab = show_run_folder(tmp_path)
    assert tab.column("part") == ["adapter/", "checkpoint-300, 400/", "metrics.json"]
    assert tab.column("files") == ["1", "4", "1"] and tab.column("size")[1] == "8 KiB"
    assert ".lock" not in repr(tab) and "0c3b8cf4" not in repr(tab)


def test_show_answers_cuts_long_text(tmp_path, english):
    (tmp_path / "predictions.jsonl").write_text(
        '{"prompt": "What is 9 + 5?", "reference": "14", "before": "' + "x" * 300
        + '", "after": "14"}\n', encoding="utf-8")
    tab = show_answers(tmp_path, width=40)
    assert tab.column("answer after") == ["14"] and len(tab.column("answer before")[0]) == 40
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty has no answers"):
        show_answers(tmp_path / "empty")


def test_show_source_shows_an_excerpt_and_where_the_rest_is():
    from ift_tutorial.training.trainer import train

    shown = repr(show_source(train))
    lines = shown.splitlines()
    assert len(lines) == 16 and lines[0].startswith("def train(")
    assert lines[-1].startswith("# ift_tutorial.training.trainer, lines ")
    assert "(15 of " in lines[-1]
    with pytest.raises(ValueError, match="outside the"):
        show_source(train, lines=(1, 10_000))


def test_show_tokens_wraps_onto_short_lines(english):
    tokens = [f"t{i}" for i in range(29)]
    out = show_tokens(tokens, ids=list(range(29)), labels=[-100] * 10 + list(range(19)),
                      per_line=10)
    blocks = repr(out).split("\n\n")
    assert len(blocks) == 3  # 10 + 10 + 9, not 29 columns
    assert all(len(line) < 100 for line in repr(out).splitlines())
    assert out._repr_html_().count("<table") == 3
    with pytest.raises(ValueError, match="29 tokens but 3 values of 'id'"):
        show_tokens(tokens, ids=[1, 2, 3])


def test_readable_shortens_module_paths_and_explains_missing(english):
    from ift_tutorial.book.printouts import readable

    paths = ["model.layers.0.q_proj", "model.layers.1.q_proj", "model.layers.0.k_proj"]
    assert readable(paths) == "q_proj, k_proj"
    assert readable(None) == NOT_MEASURED
    assert readable({"exact_match": 16, "ifeval": 24}) == "exact_match 16, ifeval 24"
