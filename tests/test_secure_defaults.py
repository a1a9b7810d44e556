"""Secure defaults: no remote code, no pickle weights, no token in any output, unless asked."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from ift_tutorial import loading
from ift_tutorial.config import ModelSettings, available_presets, load_config
from ift_tutorial.errors import UserFacingError
from ift_tutorial.loading import PickleWeightsError, load_model, load_tokenizer
from ift_tutorial.paths import TINY_MODEL_DIR

FAKE_TOKEN = "hf_fakeTOKEN123"


class _Recorder:
    """Stands in for ``from_pretrained``: records its keyword arguments, loads nothing."""

    def __init__(self, result) -> None:
        self.result = result
        self.calls: list[dict] = []

    def __call__(self, path, **kwargs):
        self.calls.append({"path": path, **kwargs})
        return self.result


@pytest.fixture
def recorded(monkeypatch) -> tuple[_Recorder, _Recorder]:
    model = _Recorder(torch.nn.Linear(1, 1))
    tok = _Recorder(SimpleNamespace(pad_token="<pad>", eos_token="<eos>", chat_template="{{ messages }}"))
    monkeypatch.setattr(loading.AutoModelForCausalLM, "from_pretrained", model)
    monkeypatch.setattr(loading.AutoTokenizer, "from_pretrained", tok)
    return model, tok


# Fine-tuning presets (the pretraining config of the tiny model has its own schema).
FINE_TUNING_PRESETS = [p for p in available_presets() if not p.startswith("pretrain")]


def test_every_shipped_model_preset_is_checked() -> None:
    assert {"tiny", "qwen2.5-7b"} <= set(FINE_TUNING_PRESETS)


@pytest.mark.parametrize("preset", FINE_TUNING_PRESETS)
def test_presets_never_trust_remote_code_or_pickle(preset: str, recorded, monkeypatch) -> None:
    settings = load_config(preset).model
    assert settings.trust_remote_code is False and settings.allow_pickle is False
    model_calls, tok_calls = recorded
    monkeypatch.setattr("huggingface_hub.get_token", lambda: FAKE_TOKEN)  # for gated presets
    load_model(settings)
    load_tokenizer(settings)
    assert model_calls.calls[0]["trust_remote_code"] is False
    assert model_calls.calls[0]["use_safetensors"] is True
    assert tok_calls.calls[0]["trust_remote_code"] is False


def test_remote_code_only_when_asked(recorded) -> None:
    model_calls, tok_calls = recorded
    settings = load_config("qwen2.5-7b", ["model.trust_remote_code=true"]).model
    load_model(settings)
    load_tokenizer(settings)
    assert model_calls.calls[0]["trust_remote_code"] is True
    assert tok_calls.calls[0]["trust_remote_code"] is True


@pytest.fixture(scope="module")
def pickle_model(tmp_path_factory) -> Path:
    """The tiny model with its weights as a pickle (``pytorch_model.bin``), not safetensors."""
    folder = tmp_path_factory.mktemp("pickle_model")
    for p in TINY_MODEL_DIR.iterdir():
        if p.suffix != ".safetensors" and p.is_file():
            shutil.copy(p, folder / p.name)
    torch.save(load_file(TINY_MODEL_DIR / "model.safetensors"), folder / "pytorch_model.bin")
    return folder


def test_pickle_weights_refused_by_default(pickle_model: Path) -> None:
    with pytest.raises(PickleWeightsError, match="allow_pickle"):
        load_model(ModelSettings(name_or_path=str(pickle_model)))


def test_pickle_weights_load_when_allowed(pickle_model: Path) -> None:
    model = load_model(ModelSettings(name_or_path=str(pickle_model), allow_pickle=True))
    reference = load_model(ModelSettings(name_or_path=str(TINY_MODEL_DIR)))
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reference(ids).logits)


def test_gated_model_token_is_not_shown(monkeypatch, capsys) -> None:
    settings = ModelSettings(name_or_path="meta-llama/Llama-2-7b-hf", gated=True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(UserFacingError, match="gated"):
        loading.check_hub_access(settings, settings.name_or_path)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: FAKE_TOKEN)
    loading.check_hub_access(settings, settings.name_or_path)  # a token is set: no error
    out = capsys.readouterr()
    assert FAKE_TOKEN not in out.out + out.err


# A training run with a token in its environment is checked in tests/training/test_checkpoints.py
# (test_token_never_reaches_outputs), which shares that run with the reproducibility test.
