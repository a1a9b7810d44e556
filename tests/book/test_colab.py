"""The Colab flow: tested versions, Colab's torch kept, runs on Google Drive, chapter 8's adapter."""

from __future__ import annotations

import json
import re
import sys
import tomllib
import types
from importlib import metadata
from pathlib import Path

import pytest
import torch
from helpers import CHAPTERS, cell_source, chapter_notebooks, code_sources, notebook_cells, read_notebook
from packaging.requirements import Requirement

from ift_tutorial.book import colab, notebook
from ift_tutorial.config import available_presets
from ift_tutorial.errors import UserFacingError
from ift_tutorial.paths import PROJECT_ROOT, local_runs_dir, runs_dir

CONSTRAINTS = PROJECT_ROOT / colab.CONSTRAINTS_FILE
PINNED = {"transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "safetensors",
          "tokenizers", "huggingface-hub"}


def _constraints() -> dict[str, Requirement]:
    lines = [ln for ln in CONSTRAINTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    reqs = [Requirement(ln) for ln in lines]
    return {r.name.lower().replace("_", "-"): r for r in reqs}


def _setup_source(path: Path) -> str:
    return cell_source(notebook_cells(path)[1])


def test_constraints_pin_the_tested_stack_but_not_torch():
    reqs = _constraints()
    assert set(reqs) == PINNED  # the Hugging Face stack and bitsandbytes; torch stays Colab's
    for name, req in reqs.items():
        [spec] = req.specifier
        assert spec.operator == "==", f"{name}: pin an exact tested version"
        assert spec.version == metadata.version(name), f"{name}: the tests run {metadata.version(name)}"


def test_torch_range_starts_at_the_packages_lower_bound():
    deps = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [torch_req] = [Requirement(d) for d in deps if Requirement(d).name == "torch"]
    [lower] = [s for s in torch_req.specifier if s.operator == ">="]
    assert f">={lower.version}" in colab.TORCH_RANGE
    assert colab.check_torch() == metadata.version("torch")  # the torch of this machine is in range


@pytest.mark.parametrize("version, ok", [("2.8.0+cu126", True), ("2.4.0", True), ("2.3.1", False),
                                         ("3.0.0", False)])
def test_check_torch_accepts_colab_builds_in_range(version, ok):
    if ok:
        assert colab.check_torch(version) == version
    else:
        with pytest.raises(UserFacingError, match=f"torch {re.escape(version)} is outside"):
            colab.check_torch(version)


def test_setup_cell_installs_with_constraints_and_keeps_torch():
    source = _setup_source(CHAPTERS / "07_fine_tuning.ipynb")
    assert f'"-c", "ift-tutorial/{colab.CONSTRAINTS_FILE}"' in source
    assert "f\"torch=={version('torch')}\"" in source  # Colab's installed torch, as it is


def test_setup_cell_form_lists_every_preset():
    source = _setup_source(CHAPTERS / "07_fine_tuning.ipynb")
    [options] = re.findall(r'^PRESET = "tiny"  # @param (\[.*\])$', source, flags=re.M)
    assert sorted(json.loads(options)) == sorted(available_presets())
    assert re.search(r'^RUNS_ON_DRIVE = True  # @param \{type: "boolean"\}$', source, flags=re.M)
    assert "setup_notebook(default=PRESET, runs_on_drive=RUNS_ON_DRIVE)" in source


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapters_with_a_7b_branch_open_on_a_colab_gpu(path):
    nb = read_notebook(path)
    code = code_sources(nb["cells"][2:])
    uses_preset = any(re.search(r"load_config\(PRESET|PRESET [!=]=", src) for src in code)
    meta = nb["metadata"]
    gpu = {k: meta.get(k) for k in colab.GPU_NOTEBOOK_METADATA} == colab.GPU_NOTEBOOK_METADATA
    assert gpu == uses_preset, f"{path.name}: Colab GPU metadata {'missing' if uses_preset else 'not needed'}"


def test_preset_field_is_the_default_and_ift_preset_wins(monkeypatch):
    monkeypatch.delenv("IFT_PRESET", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setattr(notebook.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(notebook, "describe_hardware", lambda: "GPU fake")
    assert notebook.setup_notebook(default="olmo-2-7b") == "olmo-2-7b"
    monkeypatch.setenv("IFT_PRESET", "tiny")
    assert notebook.setup_notebook(default="olmo-2-7b") == "tiny"


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """A google.colab module whose drive.mount records the mount point."""
    mounted = []
    drive = types.SimpleNamespace(mount=lambda point: (mounted.append(point), Path(point).mkdir(parents=True)))
    google = types.ModuleType("google")
    module = types.ModuleType("google.colab")
    module.drive = drive
    google.colab = module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    for name in ("IFT_RUNS_DIR", "IFT_LOCAL_RUNS_DIR"):  # the code sets them: restore them after
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return mounted


def test_drive_is_mounted_and_runs_go_there(fake_colab, tmp_path, capsys, monkeypatch):
    mount = tmp_path / "drive"
    runs = colab.use_drive_for_runs(mount_point=mount)
    assert fake_colab == [str(mount)]
    assert runs == mount / colab.DRIVE_RUNS and runs.is_dir()
    assert runs_dir() == runs  # IFT_RUNS_DIR is set
    assert local_runs_dir() == colab.LOCAL_RUNS  # merged models stay on the VM's disk
    out = capsys.readouterr().out
    assert "Google Drive: MyDrive/ift-tutorial/runs" in out and str(tmp_path) not in out


def test_setup_notebook_keeps_7b_runs_on_drive_by_default(fake_colab, monkeypatch, tmp_path):
    """Chapter 8 reads chapter 7's adapter: on Colab a 7B preset's runs go to Drive unless the
    reader unticks RUNS_ON_DRIVE; the tiny preset's runs (minutes) stay on the machine."""
    monkeypatch.setattr(colab, "DRIVE_MOUNT", tmp_path / "drive")
    monkeypatch.setattr(colab.use_drive_for_runs, "__defaults__", (tmp_path / "drive",))
    monkeypatch.setattr(colab, "check_torch", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a Colab GPU runtime
    monkeypatch.setattr(notebook, "describe_hardware", lambda: "a Colab GPU")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("IFT_PRESET", raising=False)
    notebook.setup_notebook()  # tiny
    assert fake_colab == []
    monkeypatch.setenv("IFT_PRESET", "qwen2.5-7b")
    notebook.setup_notebook(runs_on_drive=False)
    assert fake_colab == []
    notebook.setup_notebook()
    assert fake_colab == [str(tmp_path / "drive")]


def test_off_colab_drive_is_not_mounted(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("IFT_RUNS_DIR", raising=False)
    assert colab.use_drive_for_runs() is None
    assert "Colab only" in capsys.readouterr().out


def test_chapter7_adapter_is_found_in_the_runs_folder_or_the_error_says_how(monkeypatch, tmp_path):
    monkeypatch.setenv("IFT_RUNS_DIR", str(tmp_path))
    monkeypatch.delenv("IFT_REHEARSAL", raising=False)
    with pytest.raises(UserFacingError, match=r"run chapter 7 with the same preset first.*RUNS_ON_DRIVE"):
        colab.find_run_adapter("ch07-qwen2.5-7b")
    adapter = tmp_path / "ch07-qwen2.5-7b" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    assert colab.find_run_adapter("ch07-qwen2.5-7b") == adapter
