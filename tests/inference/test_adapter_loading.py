"""Adapters that open anywhere: the shipped one through its README's code, run from a folder
outside the checkout, and the ones ``train`` writes through PEFT's own ``AutoPeftModel``.

PEFT hands ``base_model_name_or_path`` unchanged to ``AutoModelForCausalLM.from_pretrained``,
which reads a relative path against the working directory. So the shipped adapter keeps the
portable ``data/tiny-llama`` (no machine path in a shipped file) and its README loads the
base by name; a run folder's adapter names its base by absolute path.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import small_train_file, tiny_config

import ift_tutorial
from ift_tutorial.paths import DATA_DIR, SHIPPED_ROOT, TINY_MODEL_DIR

ADAPTER = DATA_DIR / "adapters" / "tiny-sft"
MACHINE = re.compile(r"/root/|/home/|/tmp/|/work/|/content/|/Users/|site-packages")


def _load_it_with_blocks() -> list[str]:
    """The Python blocks of the shipped README's "Load it with" section, in order."""
    readme = (ADAPTER / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Load it with"):]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_shipped_adapter_names_its_base_without_a_machine_path():
    config = json.loads((ADAPTER / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == "data/tiny-llama"
    assert (SHIPPED_ROOT / config["base_model_name_or_path"]).resolve() == TINY_MODEL_DIR.resolve()
    for path in ADAPTER.iterdir():
        if path.suffix in (".json", ".jsonl", ".md", ".jinja"):
            found = MACHINE.search(path.read_text(encoding="utf-8"))
            assert found is None, f"{path.name}: {found.group()}"


def test_the_readme_code_answers_as_recorded_from_outside_the_checkout(tmp_path):
    """Both blocks of the README (the package's helper; plain transformers + PEFT), run as
    they are in one fresh process whose working directory is an empty temporary folder,
    offline and on the CPU, print the greedy answer recorded in predictions.jsonl."""
    blocks = _load_it_with_blocks()
    assert len(blocks) == 2 and "load_for_inference" in blocks[0]
    assert "PeftModel.from_pretrained" in blocks[1] and "AutoModelForCausalLM" in blocks[1]
    questions = {m for b in blocks for m in re.findall(r'"content": "([^"]+)"', b)}
    assert len(questions) == 1, questions
    question = questions.pop()
    recorded = {r["prompt"]: r for r in map(json.loads, (ADAPTER / "predictions.jsonl").open())}
    assert recorded[question]["correct_after"], "pick a question the adapter answers right"

    files = []
    for i, block in enumerate(blocks):
        files.append(tmp_path / f"block{i}.py")
        files[-1].write_text(block, encoding="utf-8")
    package_parent = str(Path(ift_tutorial.__file__).resolve().parents[1])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}
    driver = "import runpy, sys\nfor f in sys.argv[1:]:\n    runpy.run_path(f, run_name='__main__')"
    proc = subprocess.run([sys.executable, "-c", driver, *map(str, files)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [recorded[question]["after"]] * 2, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["block0.py", "block1.py"]  # wrote nothing


def test_an_adapter_that_train_writes_opens_with_auto_peft_from_any_directory(tmp_path, monkeypatch):
    from peft import AutoPeftModelForCausalLM

    from ift_tutorial.training.trainer import train

    data = small_train_file(tmp_path / "train.jsonl", 8)
    out = tmp_path / "run"
    train(tiny_config(f"data.train={data}", "training.max_steps=1", "training.save_steps=1",
                      "training.per_device_train_batch_size=4", "training.num_threads=1"),
          out, evaluate=False)
    config = json.loads((out / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert Path(config["base_model_name_or_path"]) == TINY_MODEL_DIR  # absolute, this machine's
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    model = AutoPeftModelForCausalLM.from_pretrained(out / "adapter")
    assert type(model.get_base_model()).__name__ == "LlamaForCausalLM"


def test_auto_peft_opens_the_shipped_adapter_from_the_root_of_the_checkout(monkeypatch):
    """What the README says of the relative name: from the folder that holds data/, it works."""
    from peft import AutoPeftModelForCausalLM

    monkeypatch.chdir(SHIPPED_ROOT)
    model = AutoPeftModelForCausalLM.from_pretrained("data/adapters/tiny-sft")
    assert Path(model.get_base_model().name_or_path) == Path("data/tiny-llama")
