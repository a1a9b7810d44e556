"""The package as a reuser sees it: the public API, and the wheel used outside the repository."""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import yaml

import ift_tutorial
from ift_tutorial.config import PATH_FIELDS, available_presets, load_config
from ift_tutorial.paths import CONFIGS_DIR, SHIPPED_ROOT

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = [n for n in ift_tutorial.__all__ if n != "__version__"]


def test_import_is_light():
    """``import ift_tutorial`` must not import torch: the CLI fails fast on a bad config."""
    code = "import sys, ift_tutorial; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_is_documented_with_an_example(name):
    obj = getattr(ift_tutorial, name)
    assert obj.__doc__ and "Example:" in obj.__doc__, f"{name} needs a docstring with an example"


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        ift_tutorial.no_such_thing  # noqa: B018


def test_docstring_examples_run(tmp_path, monkeypatch):
    """Every public example is true (run in an empty folder: merge writes runs/merged)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IFT_RUNS_DIR", raising=False)
    failures = []
    try:
        for name in PUBLIC:
            finder, runner = doctest.DocTestFinder(recurse=False), doctest.DocTestRunner(verbose=False)
            for test in finder.find(getattr(ift_tutorial, name), name, globs={}):
                result = runner.run(test, out=lambda s: failures.append(s))
                assert result.failed == 0, "".join(failures)
    finally:
        os.environ.pop("IFT_RUNS_DIR", None)  # runs_dir's example sets it; monkeypatch would not undo that


# --- the wheel, installed outside the repository ------------------------------------------


def preset_files(path: Path) -> set[Path]:
    """Files of the project's own that a preset file names (paths resolved like load_config)."""
    cfg = load_config(path.stem)
    named = set()
    for section, keys in PATH_FIELDS.items():
        for key in keys:
            value = getattr(getattr(cfg, section), key)
            for item in value if isinstance(value, list) else [value]:
                item = getattr(item, "fixture", item)  # a hub source: its local fixture
                if item and Path(item).is_absolute():
                    named.add(Path(item))
    return named


def _files_under(folder: Path) -> set[str]:
    return {p.relative_to(SHIPPED_ROOT).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(ROOT)], check=True, capture_output=True,
                   cwd=out, timeout=300)
    [whl] = out.glob("ift_tutorial-*.whl")
    return whl


def test_wheel_carries_every_file_a_preset_references(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = set()
    for preset in available_presets():
        for path in preset_files(CONFIGS_DIR / f"{preset}.yaml"):
            assert path.is_relative_to(SHIPPED_ROOT / "data") or path.is_relative_to(CONFIGS_DIR), \
                f"{preset} names a file outside the project's data/ and configs/: {path}"
            needed |= (_files_under(path) if path.is_dir() else
                       {path.relative_to(SHIPPED_ROOT).as_posix()})
    needed |= _files_under(CONFIGS_DIR)  # presets, templates, accelerate configs
    missing = sorted(f"ift_tutorial/{n}" for n in needed if "__pycache__" not in n
                     and f"ift_tutorial/{n}" not in names)
    assert not missing, f"not in the wheel: {missing}"


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A virtual environment with only the wheel added (dependencies from this Python).

    Not ``system_site_packages``: from inside a virtualenv that means the *base*
    interpreter's packages, without torch. A ``.pth`` file puts this interpreter's own
    site-packages (a virtualenv's or the system's) after the new environment's, which
    holds the wheel; the checkout's editable install is not among them (``.pth`` files
    of an added folder are not read).
    """
    import site

    env_dir = tmp_path_factory.mktemp("venv")
    venv.create(env_dir, system_site_packages=False, with_pip=False)
    python = env_dir / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    (Path(target) / "_deps_from_the_test_python.pth").write_text(
        "".join(f"{d}\n" for d in site.getsitepackages()), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    return env_dir


def _run(installed: Path, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("IFT_RUNS_DIR", "IFT_PRESET",
                                                          "IFT_REHEARSAL", "PYTHONPATH")}
    proc = subprocess.run([str(installed / "bin" / "ift-tutorial"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_installed_package_is_the_wheel_not_the_checkout(installed, tmp_path):
    code = "import ift_tutorial.paths as p; print(p.PACKAGE_DIR); print(p.PROJECT_ROOT)"
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert Path(out[0]).is_relative_to(installed) and out[1] == "None"


def test_plan_memory_from_an_empty_folder(installed, tmp_path):
    plan = json.loads(_run(installed, tmp_path, "plan-memory", "--config", "qwen2.5-7b",
                           "--gpu", "t4", "--json").stdout)
    assert 4 < plan["total_gb"] < 16 and plan["fits"]


def test_every_7b_preset_resolves_its_chat_template(installed, tmp_path):
    code = (
        "import json; from ift_tutorial.config import available_presets, load_config\n"
        "print(json.dumps({p: load_config(p).model.chat_template for p in available_presets()"
        " if p != 'tiny'}))"
    )
    out = subprocess.run([str(installed / "bin" / "python"), "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    templates = json.loads(out)
    assert templates, "no 7B presets"
    for preset, template in templates.items():
        assert template and Path(template).is_file() and Path(template).is_relative_to(installed), \
            f"{preset}: {template}"


def test_own_data_from_a_preset_with_the_installed_wheel(installed, tmp_path):
    """The README's "Use it on your own data": a config from a preset, a file in the user's
    format, then check-data, a short train and evaluate; outputs land in the user's folder."""
    rows = [{"instruction": f"What is {a} + {b}?", "input": "", "output": str(a + b)}
            for a in range(8) for b in range(8)]
    (tmp_path / "my_data.json").write_text(json.dumps(rows), encoding="utf-8")
    # A user's own data/tasks/heldout.jsonl must not shadow the preset's held-out set.
    decoy = tmp_path / "data" / "tasks" / "heldout.jsonl"
    decoy.parent.mkdir(parents=True)
    decoy.write_text(json.dumps({"messages": [{"role": "user", "content": "decoy"},
                                              {"role": "assistant", "content": "x"}]}) + "\n")
    (tmp_path / "my.yaml").write_text(yaml.safe_dump({
        "base": "tiny", "name": "mine",
        "data": {"train": "my_data.json", "max_eval_examples": 16},
        "training": {"save_steps": 2},
    }), encoding="utf-8")
    report = json.loads(_run(installed, tmp_path, "check-data", "my_data.json", "--config",
                             "my.yaml", "--json").stdout)
    assert report["n_kept"] == len(rows)
    metrics = _last_json(_run(installed, tmp_path, "train", "--config", "my.yaml", "--output-dir",
                              "run", "--set", "training.max_steps=3").stdout)
    assert metrics["steps"] == 3 and metrics["train_examples"] == len(rows)
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
    evaluation = _last_json(_run(installed, tmp_path, "evaluate", "--config", "my.yaml",
                                 "--adapter", "run/adapter").stdout)
    assert evaluation["n_exact_match"] == 16 and isinstance(evaluation["exact_match"], float)
    assert not any(installed.rglob("runs")), "a run was written inside the installed package"


def _last_json(stdout: str) -> dict:
    """The JSON object a command prints last (after its progress lines)."""
    start = stdout.rindex("\n{") + 1 if not stdout.startswith("{") else 0
    return json.loads(stdout[start:])


def test_api_reference_page_documents_every_public_name():
    """book/api.md (built with autodoc and napoleon, -W) lists the whole public API."""
    page = (ROOT / "book" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"\.\. auto(?:function|class):: ift_tutorial\.(\w+)", page))
    assert documented == set(PUBLIC)
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text(encoding="utf-8"))
    assert "api" in json.dumps(toc)
