"""The GGUF export, checked statically: no compiled llama.cpp, only its converter and ``gguf``.

The converter comes from the pinned llama-cpp-python sdist (fetched once into the cache:
``python -m ift_tutorial.inference.converter``, which ``make test`` runs first). Without it
these tests skip, except in CI (``CI`` or ``IFT_BOOK_TESTS=1``), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer

from ift_tutorial.cli import main
from ift_tutorial.config import load_config
from ift_tutorial.inference import export as export_mod
from ift_tutorial.inference.converter import ConverterError, convert, converter_dir
from ift_tutorial.inference.export import disk_needed, export_model
from ift_tutorial.inference.gguf_checks import (corpus_alphabet, gguf_metadata,
                                                merges_outside_letter_runs, read_gguf,
                                                tensor_mismatches, vocab_mismatches)
from ift_tutorial.paths import CONFIGS_DIR, TINY_MODEL_DIR

ADAPTER = Path(__file__).resolve().parents[2] / "data" / "adapters" / "tiny-sft"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true") or os.environ.get("IFT_BOOK_TESTS") == "1"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    """The shipped tiny adapter exported to f16 (merged folder kept) and converted to f32."""
    try:
        converter_dir()
    except ConverterError as err:
        (pytest.fail if IN_CI else pytest.skip)(f"llama.cpp's converter is unavailable: {err}")
    out = tmp_path_factory.mktemp("export")
    result = export_model(load_config("tiny"), ADAPTER, out, quant="f16", keep_merged=True)
    f32 = convert(result.merged, out / "tiny-f32.gguf", "f32")
    return {"f16": result.gguf, "f32": f32, "merged": result.merged, "modelfile": result.modelfile}


@pytest.mark.parametrize("kind", ["f32", "f16"])
def test_every_gguf_tensor_equals_the_merged_models(exported, kind):
    report = tensor_mismatches(exported[kind], exported["merged"])
    assert report.problems == []
    assert report.compared == 38  # 4 layers x 9 tensors, the embedding (tied head) and the final norm
    assert report.types == ({"F32": 38} if kind == "f32" else {"F16": 29, "F32": 9})  # norms stay f32


def test_the_tensor_check_sees_a_changed_weight(exported, tmp_path):
    merged = tmp_path / "merged"
    shutil.copytree(exported["merged"], merged)
    tensors = load_file(merged / "model.safetensors")
    tensors["model.layers.2.self_attn.k_proj.weight"][5, 7] += 1e-3
    save_file(tensors, merged / "model.safetensors", metadata={"format": "pt"})
    problems = tensor_mismatches(exported["f32"], merged).problems
    assert len(problems) == 1 and problems[0].startswith("blk.2.attn_k.weight")


def test_the_gguf_tokenizer_is_the_tuned_one(exported):
    tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
    assert vocab_mismatches(exported["f16"], tokenizer) == []
    meta = gguf_metadata(read_gguf(exported["f16"]))
    assert meta["tokenizer.ggml.pre"] == "default"  # the project's hash, registered explicitly
    assert "{% generation %}" not in meta["tokenizer.chat_template"]  # training-only markers
    assert meta["llama.context_length"] == 256


def test_the_vocab_check_sees_a_different_template(exported):
    tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
    tokenizer.chat_template = (CONFIGS_DIR / "chat_templates" / "chatml_train.jinja").read_text()
    assert vocab_mismatches(exported["f16"], tokenizer) == [
        "chat template: the GGUF file's differs from the tokenizer's"]


def test_the_modelfile_stops_on_the_end_of_turn_and_has_the_template(exported):
    text = exported["modelfile"].read_text(encoding="utf-8")
    assert text.startswith("FROM ./tiny-f16.gguf\nTEMPLATE \"\"\"")
    assert 'PARAMETER stop """</s>"""' in text and "PARAMETER num_ctx 256" in text
    assert '{{ .Content }}</s>\n' in text  # an assistant turn ends with the EOS it was tuned on


def test_the_tiny_merges_stay_inside_letter_runs():
    tokenizer = AutoTokenizer.from_pretrained(TINY_MODEL_DIR)
    assert merges_outside_letter_runs(tokenizer, corpus_alphabet()) == []


def test_a_merge_across_a_space_is_reported():
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads((TINY_MODEL_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    spec["model"]["vocab"]["Ġt"] = len(spec["model"]["vocab"])
    spec["model"]["merges"].append(["Ġ", "t"])  # " t": what a retrained tokenizer might learn
    broken = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))
    assert merges_outside_letter_runs(broken, "abct ") == ["Ġ t"]


def test_export_needs_about_30_gb_of_disk_for_a_7b_model_in_q4_k_m():
    params, stored = 7_615_616_512, 15_231_233_024  # Qwen2.5-7B, bf16
    needed = disk_needed(params, stored, "q4_k_m")
    assert 30e9 < needed < 32e9  # the merged folder plus its f16 GGUF, at the peak
    assert disk_needed(params, stored, "f16") == needed  # f16 has no quantised copy


# --- bad input: one clear line, status 2 ----------------------------------------------------


def _export(*args: str) -> list[str]:
    return ["export", "--config", "tiny", "--adapter", str(ADAPTER), *args]


def test_an_unknown_quantisation_is_refused(tmp_path, capsys):
    assert main(_export("--output-dir", str(tmp_path), "--quant", "q3_x")) == 2
    assert "unknown quantisation 'q3_x' (choose from f16, q8_0, q4_k_m)" in capsys.readouterr().err


def test_an_output_folder_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "out").write_text("")
    assert main(_export("--output-dir", str(tmp_path / "out"))) == 2
    assert "it is a file, not a folder" in capsys.readouterr().err


def test_a_full_disk_says_how_much_is_needed(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export_mod, "free_bytes", lambda path: 5 * 2**20)
    assert main(_export("--output-dir", str(tmp_path / "out"))) == 2
    err = capsys.readouterr().err
    assert "the export needs about" in err and "5 MiB is free" in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_quantising_without_llama_cpp_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    assert main(_export("--output-dir", str(tmp_path), "--quant", "q4_k_m")) == 2
    assert 'pip install "ift-tutorial[export]"' in capsys.readouterr().err


def test_an_adapter_from_another_base_is_refused(tmp_path, capsys):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    other = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                                         num_attention_heads=4, num_key_value_heads=4,
                                         vocab_size=1611))
    get_peft_model(other, LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(tmp_path / "a")
    assert main(["export", "--config", "tiny", "--adapter", str(tmp_path / "a"),
                 "--output-dir", str(tmp_path / "out")]) == 2
    assert "made for another base model" in capsys.readouterr().err
