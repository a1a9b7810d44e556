"""setup_notebook: the first call of every chapter."""

from __future__ import annotations

import os
import random
import sys
import types

import matplotlib
import numpy as np
import pytest
import torch

from ift_tutorial import config as config_module
from ift_tutorial.book import notebook
from ift_tutorial.errors import UserFacingError


@pytest.fixture
def presets(tmp_path, monkeypatch):
    """A configs/ folder with a CPU preset (local model) and a 7B preset (hub id)."""
    (tmp_path / "tiny.yaml").write_text("name: tiny\nmodel:\n  name_or_path: data/tiny-llama\n")
    (tmp_path / "big-7b.yaml").write_text(
        "name: big-7b\nmodel:\n  name_or_path: Qwen/Qwen2.5-7B-Instruct\n"
    )
    (tmp_path / "notes.yaml").write_text("just: a file without a model section\n")
    monkeypatch.setattr(config_module, "CONFIGS_DIR", tmp_path)
    monkeypatch.delenv("IFT_PRESET", raising=False)
    # setup_notebook sets this variable; recording it here makes monkeypatch restore it.
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "")
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return tmp_path


def test_default_preset_prints_one_line_and_returns_name(presets, capsys):
    assert notebook.setup_notebook(default="tiny") == "tiny"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "preset tiny" in out[0]
    assert notebook.describe_hardware() in out[0]


def test_env_variable_selects_the_preset(presets, monkeypatch):
    monkeypatch.setenv("IFT_PRESET", "big-7b")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(notebook, "describe_hardware", lambda: "GPU fake")
    assert notebook.setup_notebook(default="tiny") == "big-7b"


def test_unknown_preset_names_it_and_lists_the_known_ones(presets, monkeypatch):
    monkeypatch.setenv("IFT_PRESET", "qwen-typo")
    with pytest.raises(UserFacingError) as err:
        notebook.setup_notebook()
    message = str(err.value)
    assert "qwen-typo" in message
    assert "big-7b" in message and "tiny" in message
    assert "notes" not in message  # a YAML file without a model section is no preset


def test_7b_preset_without_gpu_is_a_clear_error(presets, monkeypatch, capsys):
    monkeypatch.setenv("IFT_PRESET", "big-7b")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserFacingError, match="needs a CUDA GPU") as err:
        notebook.setup_notebook()
    assert "tiny" in str(err.value)
    assert "Change runtime type" not in capsys.readouterr().out  # not on Colab


def test_7b_preset_without_gpu_on_colab_says_how_to_get_one(presets, monkeypatch, capsys):
    monkeypatch.setenv("IFT_PRESET", "big-7b")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert notebook.in_colab()
    with pytest.raises(UserFacingError, match="Runtime > Change runtime type"):
        notebook.setup_notebook()
    assert "T4 GPU" in capsys.readouterr().out


def test_in_colab_is_false_here(presets):
    assert notebook.in_colab() is False


def test_seeds_make_random_draws_repeat(presets):
    notebook.setup_notebook(seed=3)
    first = (torch.rand(3), np.random.rand(), random.random())
    notebook.setup_notebook(seed=3)
    second = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(first[0], second[0])
    assert first[1:] == second[1:]


def test_plot_style_is_applied(presets, monkeypatch):
    monkeypatch.setitem(matplotlib.rcParams, "figure.figsize", [1.0, 1.0])
    notebook.setup_notebook()
    assert list(matplotlib.rcParams["figure.figsize"]) == [7.0, 4.0]
    assert matplotlib.rcParams["axes.spines.top"] is False


def test_library_versions_reads_installed_and_missing():
    versions = notebook.library_versions(["torch", "surely-not-installed-dist"])
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert versions["surely-not-installed-dist"] is None
    assert set(notebook.library_versions()) == set(notebook.STACK)


def test_check_requirements_flags_too_old_and_missing(monkeypatch):
    declared = ["torch>=2.4", "oldlib>=2.0", "gone>=1", 'pytest>=8; extra == "dev"']
    monkeypatch.setattr(notebook.metadata, "requires", lambda dist: declared)
    installed = {"torch": "2.13.0+cpu", "oldlib": "1.9", "gone": None}
    monkeypatch.setattr(notebook, "library_versions", lambda names: {n: installed[n] for n in names})
    result = {r.name: r for r in notebook.check_requirements()}
    assert set(result) == {"torch", "oldlib", "gone"}  # the dev extra is not checked
    assert result["torch"].satisfied  # a local version (+cpu) satisfies >=2.4
    assert not result["oldlib"].satisfied and result["oldlib"].specifier == ">=2.0"
    assert not result["gone"].satisfied and result["gone"].installed is None


def test_progress_bars_are_hidden_for_tiny_but_kept_for_7b(presets, monkeypatch):
    monkeypatch.setenv("IFT_PRESET", "big-7b")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(notebook, "describe_hardware", lambda: "GPU fake")
    notebook.setup_notebook()
    assert "HF_HUB_DISABLE_PROGRESS_BARS" not in os.environ  # downloads show their progress
    monkeypatch.setenv("IFT_PRESET", "tiny")
    notebook.setup_notebook()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
