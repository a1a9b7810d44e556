"""Rehearsal (IFT_REHEARSAL=1): each 7B preset's code path on the CPU, with a shrunk stand-in model.

The train runs go through the command line exactly as CI documents it:
``ift-tutorial train --config P --output-dir D --set training.max_steps=2``.
"""

from __future__ import annotations

import json
from pathlib import Path

import bitsandbytes as bnb
import pytest
import yaml
import torch
from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

from ift_tutorial import cli
from ift_tutorial.rehearsal import preset as edge, standins
from ift_tutorial.planning.architectures import architecture_config
from ift_tutorial.config import load_config
from ift_tutorial.loading import load_model, load_tokenizer, resolve_model_path
from ift_tutorial.planning.memory import plan_for_config
from ift_tutorial.paths import CONFIGS_DIR, DATA_DIR, PACKAGE_DIR, resolve_path, runs_dir

PRESETS = ["qwen2.5-7b", "llama-3.1-8b", "olmo-2-7b"]
#: The class each preset's real checkpoint loads as (its config.json "architectures").
REAL_CLASS = {"qwen2.5-7b": "Qwen2ForCausalLM", "llama-3.1-8b": "LlamaForCausalLM",
              "olmo-2-7b": "Olmo2ForCausalLM"}


@pytest.fixture
def rehearse(monkeypatch):
    monkeypatch.setenv(edge.ENV, "1")
    monkeypatch.setattr(edge, "_ANNOUNCED", set())  # print the line again in each test


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_off_by_default_and_never_for_local_models(monkeypatch):
    monkeypatch.delenv(edge.ENV, raising=False)
    assert not edge.applies_to({"model": {"name_or_path": "Qwen/Qwen2.5-7B"}})
    assert not load_config("qwen2.5-7b").rehearsal
    preset_yaml = yaml.safe_load((CONFIGS_DIR / "qwen2.5-7b.yaml").read_text(encoding="utf-8"))
    assert load_config("qwen2.5-7b").training.max_steps == preset_yaml["training"]["max_steps"]
    assert resolve_model_path(load_config("qwen2.5-7b").model) == "Qwen/Qwen2.5-7B"
    monkeypatch.setenv(edge.ENV, "1")
    assert not load_config("tiny").rehearsal  # tiny runs as it is
    assert load_config("tiny").training.max_steps == 400
    assert not edge.applies_to({"model": {"name_or_path": "some-org/unknown-7b"}})


def test_caps_and_explicit_overrides_win(rehearse, capsys):
    cfg = load_config("qwen2.5-7b")
    t = cfg.training
    assert (t.max_steps, cfg.model.max_new_tokens_cap, cfg.data.max_eval_examples) == (3, 8, 16)
    assert (t.logging_steps, t.save_steps, t.num_threads) == (1, 3, 1)
    # everything else is the preset's own
    own = yaml.safe_load((CONFIGS_DIR / "qwen2.5-7b.yaml").read_text(encoding="utf-8"))["training"]
    assert t.per_device_train_batch_size == own["per_device_train_batch_size"]
    assert t.gradient_accumulation_steps == own["gradient_accumulation_steps"]
    assert cfg.model.max_length == 1024 and cfg.model.chat_template.endswith("chatml_train.jinja")
    assert cfg.data.train is not None  # the preset's own source (a hub set reads its fixture)
    assert load_config("qwen2.5-7b", ["training.max_steps=5"]).training.max_steps == 5
    [line] = [x for x in capsys.readouterr().err.splitlines() if x.startswith("REHEARSAL")]
    assert "Qwen2ForCausalLM" in line and "3 training steps" in line and "fp32" in line
    assert runs_dir(cfg).name == "rehearsal" and runs_dir().name != "rehearsal"


@pytest.mark.parametrize("preset", PRESETS)
def test_stand_in_has_the_real_architecture_class_shrunk(rehearse, preset):
    settings = load_config(preset).model
    folder = Path(resolve_model_path(settings))
    assert PACKAGE_DIR not in folder.parents  # built outside the package
    config = json.loads((folder / "config.json").read_text())
    real = architecture_config(settings.name_or_path)
    assert config["architectures"] == [REAL_CLASS[preset]]
    assert config["model_type"] == real.model_type
    assert config["num_hidden_layers"] == standins.LAYERS and config["hidden_size"] == standins.WIDTH
    grouped = real.num_key_value_heads < real.num_attention_heads
    assert (config["num_key_value_heads"] < config["num_attention_heads"]) == grouped
    assert sorted(p.name for p in folder.glob("*.safetensors")) == ["model.safetensors"]
    assert not list(folder.glob("*.bin"))

    model = load_model(settings)  # the real loading path: 4-bit NF4 through bitsandbytes
    assert type(model).__name__ == REAL_CLASS[preset]
    four_bit = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) == 7 * standins.LAYERS  # q, k, v, o, gate, up, down per layer
    assert four_bit[0].weight.quant_state.quant_type == "nf4"


@pytest.mark.parametrize("preset", PRESETS)
def test_vocabulary_and_token_ids_are_remapped(rehearse, preset):
    settings = load_config(preset).model
    folder = Path(resolve_model_path(settings))
    tokenizer = load_tokenizer(settings)
    config = json.loads((folder / "config.json").read_text())
    generation = json.loads((folder / "generation_config.json").read_text())
    _, facts = standins.hub_tokenizer(settings.name_or_path)
    real = architecture_config(settings.name_or_path)
    assert config["vocab_size"] == len(tokenizer) < 3000  # not 100k-152k rows
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        real_id = getattr(real, key)
        expected = None if real_id is None else tokenizer.convert_tokens_to_ids(facts.ids[real_id])
        assert config.get(key) == expected, key
        if key != "pad_token_id":
            assert generation.get(key) == expected, key
    assert tokenizer.convert_ids_to_tokens(config["eos_token_id"]) == facts.eos


@pytest.mark.parametrize("preset", PRESETS)
def test_stand_in_tokenizer_carries_special_tokens_and_the_presets_template(rehearse, preset):
    settings = load_config(preset).model
    tokenizer = load_tokenizer(settings)
    _, facts = standins.hub_tokenizer(settings.name_or_path)
    assert tokenizer.eos_token == facts.eos and tokenizer.bos_token == facts.bos
    assert tokenizer.pad_token == (facts.pad or facts.eos)  # load_tokenizer reuses EOS
    for token in facts.extra:
        assert tokenizer(token, add_special_tokens=False).input_ids == [tokenizer.convert_tokens_to_ids(token)]
    assert tokenizer.chat_template == resolve_path(settings.chat_template).read_text(encoding="utf-8")
    # the template's end of turn is inside the loss mask, as with the real tokenizer
    assert is_chat_template_stop_token_trained(tokenizer)


def test_the_qwen_hub_template_is_the_base_one_and_fails_training_as_on_a_gpu(rehearse, tmp_path):
    """Without the preset's template, the stand-in carries Qwen2.5 base's own ChatML template,
    and TRL refuses it exactly as it refuses the real tokenizer (the bug the preset fixes)."""
    tokenizer = standins.stand_in_tokenizer("Qwen/Qwen2.5-7B")
    assert "You are a helpful assistant." in tokenizer.chat_template
    assert "You are Qwen" not in tokenizer.chat_template
    assert not has_generation_markers(tokenizer.chat_template)
    with pytest.raises(ValueError, match="not training-compatible"):
        cli.main(["train", "--config", "qwen2.5-7b", "--output-dir", str(tmp_path / "run"),
                  "--no-eval", "--set", "model.chat_template=null"])


@pytest.fixture(scope="module")
def data_before():
    return _snapshot(DATA_DIR)


@pytest.mark.parametrize("preset", PRESETS)
def test_cli_train_rehearses_every_7b_preset(rehearse, preset, tmp_path, capsys, data_before):
    out = tmp_path / "run"
    status = cli.main(["train", "--config", preset, "--output-dir", str(out),
                       "--set", "training.max_steps=2"])
    captured = capsys.readouterr()
    assert status == 0, captured.err[-2000:]
    assert sum(line.startswith("REHEARSAL") for line in captured.err.splitlines()) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rehearsal"] is True and metrics["config"] == preset
    assert metrics["steps"] == 2 and metrics["compute_dtype"] == "float32"
    assert metrics["n_perplexity"] == metrics["n_gsm8k"] == edge.MAX_EVAL_EXAMPLES  # fixtures
    assert metrics["n_exact_match"] is None  # the 7B presets leave the tiny world's set out
    assert torch.isfinite(torch.tensor(metrics["final_loss"]))
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert _snapshot(DATA_DIR) == data_before  # nothing written into the project's data/


def test_cli_evaluate_generate_and_merge_rehearse(rehearse, tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--config", "olmo-2-7b", "--output-dir", str(run), "--no-eval",
                     "--set", "training.max_steps=1"]) == 0
    adapter = str(run / "adapter")
    assert cli.main(["evaluate", "--config", "olmo-2-7b", "--adapter", adapter,
                     "--output", str(tmp_path / "eval.json")]) == 0
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["rehearsal"] is True and report["n_perplexity"] == edge.MAX_EVAL_EXAMPLES
    capsys.readouterr()
    assert cli.main(["generate", "--config", "olmo-2-7b", "--adapter", adapter, "--prompt", "Hi",
                     "--max-new-tokens", "200"]) == 0
    answer = capsys.readouterr().out.split("> Hi\n", 1)[1]
    tokenizer = load_tokenizer(load_config("olmo-2-7b").model)
    assert len(tokenizer(answer.strip(), add_special_tokens=False).input_ids) <= edge.MAX_NEW_TOKENS + 2
    assert cli.main(["merge", "--config", "olmo-2-7b", "--adapter", adapter,
                     "--output-dir", str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert merged["architectures"] == ["Olmo2ForCausalLM"] and merged["num_hidden_layers"] == standins.LAYERS


def test_notebook_setup_skips_the_gpu_requirement(rehearse, monkeypatch):
    from ift_tutorial.book import notebook

    monkeypatch.setenv("IFT_PRESET", "llama-3.1-8b")  # gated, and needs a GPU, when real
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "")
    assert notebook.setup_notebook() == "llama-3.1-8b"
    monkeypatch.delenv(edge.ENV)
    with pytest.raises(Exception, match="needs a CUDA GPU"):
        notebook.setup_notebook()


def test_a_rehearsal_is_an_ordinary_config_made_at_the_edge(rehearse):
    """load_config turns the preset into a stand-in folder, offline sources and caps; the
    config says what it stands in for, and nothing below it asks whether this is a rehearsal."""
    cfg = load_config("qwen2.5-7b")
    assert cfg.rehearsal and cfg.model.name_or_path == "Qwen/Qwen2.5-7B"  # the model's name stays
    assert resolve_model_path(cfg.model) == cfg.model.load_from and Path(cfg.model.load_from).is_dir()
    real = load_config("qwen2.5-7b", ["rehearsal=false", "model.load_from=null"])
    assert plan_for_config(cfg, gpu="t4").total_bytes == plan_for_config(real, gpu="t4").total_bytes
    sources = [cfg.data.train, cfg.data.eval_perplexity, cfg.data.eval_gsm8k, *cfg.data.eval_ifeval]
    hub = [s for s in sources if not isinstance(s, str)]
    assert hub and all(s.offline and s.fixture for s in hub)
    # answers are decoded to the cap; the config keeps the lengths the ledger charges
    assert cfg.model.max_new_tokens_cap == edge.MAX_NEW_TOKENS < cfg.data.eval_ifeval_max_new_tokens
    assert cfg.model.ledger_gpu == edge.TARGET_GPU == "t4"
    assert cfg.marker() == {"rehearsal": True} and load_config("tiny").marker() == {}
    package = Path(edge.__file__).parents[1]
    asking = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                    if "rehearsal" not in p.parts and p.name not in ("config.py", "cli.py")
                    and any(f"{q}IFT_REHEARSAL{q}" in p.read_text(encoding="utf-8") for q in "\"'"))
    assert asking == [], f"modules below the edge that ask for a rehearsal: {asking}"


def test_the_edge_knows_the_config_defaults_it_caps():
    """rehearse() works on the raw YAML, below the dataclasses: its copies of their defaults agree."""
    from ift_tutorial.config import TrainingSettings

    assert (edge.DEFAULT_MAX_STEPS, edge.DEFAULT_SAVE_STEPS) == (TrainingSettings().max_steps,
                                                                  TrainingSettings().save_steps)
