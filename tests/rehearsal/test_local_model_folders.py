"""A 7B preset pointed at a local folder (a ModelScope download) is still a 7B run."""

from __future__ import annotations

import json

from ift_tutorial.config import load_config
from ift_tutorial.loading import resolve_model_path
from ift_tutorial.book.notebook import needs_gpu
from ift_tutorial.paths import TINY_MODEL_DIR, is_large_model
from ift_tutorial.config import scale

QWEN_7B_CONFIG = {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
                  "num_hidden_layers": 28, "vocab_size": 152064}


def _download(folder, weights_bytes: int | None):
    """A folder shaped like a downloaded model: config.json and (sparse) weight shards."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(QWEN_7B_CONFIG))
    if weights_bytes is not None:
        for i in range(2):  # sparse files: the size is real, the disk stays empty
            with open(folder / f"model-0000{i + 1}-of-00002.safetensors", "wb") as f:
                f.truncate(weights_bytes // 2)
    return folder


def test_a_local_7b_folder_counts_as_7b_by_its_weights_or_its_config(tmp_path):
    assert is_large_model(str(_download(tmp_path / "with-weights", 15_200_000_000)))
    assert is_large_model(str(_download(tmp_path / "config-only", None)))
    assert not is_large_model(str(_download(tmp_path / "small-weights", 4_000_000)))
    assert not is_large_model(str(TINY_MODEL_DIR)) and is_large_model("Qwen/Qwen2.5-7B")


def test_every_7b_preset_with_a_local_folder_needs_a_gpu_and_asserts_at_7b(tmp_path, monkeypatch):
    monkeypatch.delenv("IFT_REHEARSAL", raising=False)
    folder = _download(tmp_path / "Qwen2.5-7B", 15_200_000_000)
    monkeypatch.chdir(tmp_path)
    for preset in ("qwen2.5-7b", "llama-3.1-8b", "olmo-2-7b"):
        config = load_config(preset, ["model.name_or_path=./Qwen2.5-7B"])
        assert resolve_model_path(config.model) == str(folder)  # loaded from the folder
        assert needs_gpu(config) and scale(config) == "7b", preset
    tiny = load_config("tiny")
    assert not needs_gpu(tiny) and scale(tiny) == "tiny"


def test_ift_model_path_points_the_notebooks_preset_and_only_it_at_a_folder(tmp_path, monkeypatch):
    from ift_tutorial import paths as paths_module

    folder = _download(tmp_path / "Qwen2.5-7B", 15_200_000_000)
    monkeypatch.setenv("IFT_MODEL_PATH", str(folder))
    monkeypatch.delenv("IFT_PRESET", raising=False)
    assert load_config("qwen2.5-7b").model.name_or_path == "Qwen/Qwen2.5-7B"  # no preset named
    monkeypatch.setattr(paths_module, "_active_preset", None)
    paths_module.set_active_preset("qwen2.5-7b")  # what the setup cell does
    cfg = load_config("qwen2.5-7b")
    assert cfg.model.name_or_path == str(folder) and scale(cfg) == "7b" and needs_gpu(cfg)
    assert load_config("tiny").model.name_or_path == str(TINY_MODEL_DIR)
    assert load_config("olmo-2-7b").model.name_or_path.startswith("allenai/")
    # an explicit override still wins over the variable
    assert load_config("qwen2.5-7b", ["model.name_or_path=Qwen/Qwen2.5-7B"]).model.name_or_path == "Qwen/Qwen2.5-7B"
    paths_module.set_active_preset(None)
    monkeypatch.setenv("IFT_PRESET", "olmo-2-7b")
    assert load_config("olmo-2-7b").model.name_or_path == str(folder)
