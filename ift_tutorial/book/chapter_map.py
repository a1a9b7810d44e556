"""The preface's chapter map: what each chapter costs to run, and where to run it.

One row per chapter, 1 to 12, in both editions:

- **CPU time, tiny preset**: the processor time the notebook took to run top to bottom
  (its kernel's and subprocesses'), measured by ``benchmarks/chapter_times.py``
  (``benchmarks/results/chapter_times.json``); unlike the wall-clock time it hardly
  depends on what else the machine runs. A chapter not measured yet shows its planned
  time, marked as planned, or says it is not measured.
- **GPU at 7B**: whether the chapter runs the selected 7B preset (its notebook opens on a
  Colab GPU, :data:`ift_tutorial.book.colab.GPU_NOTEBOOK_METADATA`); the others run the
  same on a CPU whatever the preset.
- **T4, 7B preset**: the planned minutes on a free Colab T4, from the presets' own sizing
  (their comments: a 45-minute training budget, about 20 minutes of evaluation before and
  after); "not estimated" where no plan states one.
- **Colab**: the notebook's Colab link, in the edition's language.

The preface is a markdown page, which cannot glue numbers from a notebook, so the table is
written into ``book/intro.md`` and ``book/zh/intro.md`` between two markers by
``python -m ift_tutorial.book.chapter_map --write``, and ``tests/book/test_chapter_map.py``
checks that the pages hold what :func:`markdown_table` gives today.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from ift_tutorial.book.colab import GPU_NOTEBOOK_METADATA
from ift_tutorial.formatting import seconds
from ift_tutorial.paths import PROJECT_ROOT

CHAPTERS = range(1, 13)
START, END = "<!-- chapter-map:start -->", "<!-- chapter-map:end -->"

#: Chapters being written: title per edition, planned CPU minutes, GPU at 7B, T4 minutes.
PLANNED = {
    9: {"en": "Preference tuning: DPO and GRPO", "zh": "偏好微调：DPO 与 GRPO",
        "cpu_minutes": 2.5,  # DPO about 1 minute, GRPO about 1.5 on the tiny model
        "gpu_at_7b": True, "t4_minutes": None},
    10: {"en": "Shipping the model: GGUF export", "zh": "发布模型：导出 GGUF",
         "cpu_minutes": 1.0,
         # The merge loads the 16-bit 7B base (about 15 GB): more than a free Colab's RAM.
         "gpu_at_7b": True, "t4_minutes": None},
}
#: Planned T4 minutes at 7B, from the presets' sizing comments (configs/qwen2.5-7b.yaml):
#: chapter 7 trains for its 45-minute budget and evaluates before and after (~20 minutes).
T4_MINUTES = {7: 45 + 20}

WORDS = {
    "en": {"headers": ("Chapter", "CPU time, tiny preset", "GPU at 7B", "T4, 7B preset", "Colab"),
           "planned": "planned", "not measured": "not measured yet",
           "not estimated": "not estimated", "yes": "yes", "no": "no", "cpu only": "—",
           "being written": "being written", "open": "Open in Colab", "min": "min"},
    "zh": {"headers": ("章", "CPU 时间（tiny 预设）", "7B 需要 GPU", "T4（7B 预设）", "Colab"),
           "planned": "计划", "not measured": "尚未测量", "not estimated": "未估计",
           "yes": "是", "no": "否", "cpu only": "—", "being written": "撰写中",
           "open": "在 Colab 中打开", "min": "分钟"},
}


@dataclass(frozen=True)
class Chapter:
    """One row of the map; times in minutes (None: unknown)."""

    number: int
    title: str
    notebook: str | None  # the notebook's path relative to the edition's folder
    cpu_minutes: float | None
    cpu_measured: bool
    gpu_at_7b: bool
    t4_minutes: float | None
    colab_url: str | None


def _root() -> Path:
    if PROJECT_ROOT is None:
        raise RuntimeError("the chapter map is built from the book's sources: run it in a "
                           "checkout of the repository, not from an installed package")
    return PROJECT_ROOT


def edition_dir(edition: str) -> Path:
    """The edition's book folder: book/ (English) or book/zh/."""
    if edition not in WORDS:
        raise ValueError(f"edition must be one of {sorted(WORDS)}, not {edition!r}")
    return _root() / "book" / ("zh" if edition == "zh" else "")


def measured_seconds(results: Path | None = None) -> dict[str, float]:
    """Processor seconds per notebook stem, from benchmarks/results/chapter_times.json."""
    results = results or _root() / "benchmarks" / "results" / "chapter_times.json"
    if not results.is_file():
        return {}
    entries = json.loads(results.read_text(encoding="utf-8"))["chapters"]
    return {stem: entry["cpu_seconds"] for stem, entry in entries.items()}


def colab_url(edition: str, notebook: str) -> str:
    """The Colab address of a notebook of the edition, from the edition's _config.yml."""
    config = yaml.safe_load((edition_dir(edition) / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    org_repo = repo["url"].removeprefix("https://github.com/").rstrip("/")
    return (f"{config['launch_buttons']['colab_url']}/github/{org_repo}/blob/"
            f"{repo['branch']}/{repo['path_to_book']}/{notebook}")


def chapters(edition: str = "en") -> list[Chapter]:
    """Every chapter 1 to 12 of the edition, written or planned, in order."""
    folder = edition_dir(edition)
    times = measured_seconds()
    rows = []
    for number in CHAPTERS:
        found = sorted((folder / "chapters").glob(f"{number:02d}_*.ipynb"))
        if found:
            rows.append(_written(edition, number, found[0], times))
        elif number in PLANNED:
            plan = PLANNED[number]
            rows.append(Chapter(number, plan[edition], None, plan["cpu_minutes"], False,
                                plan["gpu_at_7b"], plan["t4_minutes"], None))
        else:
            raise FileNotFoundError(f"chapter {number}: no notebook in {folder / 'chapters'} "
                                    "and no plan in chapter_map.PLANNED")
    return rows


def _written(edition: str, number: int, path: Path, times: dict[str, float]) -> Chapter:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    first = "".join(notebook["cells"][0]["source"]).splitlines()[0]
    title = re.sub(r"^#\s*(Chapter \d+:|第 ?\d+ ?章[：:]?)\s*", "", first).strip()
    meta = notebook["metadata"]
    gpu = all(meta.get(k) == v for k, v in GPU_NOTEBOOK_METADATA.items())
    if path.stem in times:
        cpu, measured = times[path.stem] / 60, True
    else:
        cpu, measured = PLANNED.get(number, {}).get("cpu_minutes"), False
    relative = f"chapters/{path.name}"
    return Chapter(number, title, relative, cpu, measured, gpu,
                   T4_MINUTES.get(number) if gpu else None, colab_url(edition, relative))


def _cpu_cell(row: Chapter, words: dict) -> str:
    if row.cpu_minutes is None:
        return words["not measured"]
    if row.cpu_measured:  # whole seconds throughout the column: "6 s", "1 min 7 s"
        whole = round(row.cpu_minutes * 60)
        return f"{whole} s" if whole < 60 else seconds(whole)
    return f"~{row.cpu_minutes:g} {words['min']} ({words['planned']})"


def _t4_cell(row: Chapter, words: dict) -> str:
    if not row.gpu_at_7b:
        return words["cpu only"]
    if row.t4_minutes is None:
        return words["not estimated"]
    return f"~{row.t4_minutes:g} {words['min']} ({words['planned']})"


def markdown_table(edition: str = "en") -> str:
    """The chapter map as a markdown table, in the edition's language."""
    rows = chapters(edition)  # checks the edition
    words = WORDS[edition]
    lines = ["| " + " | ".join(words["headers"]) + " |", "|---|---:|:---:|---:|---|"]
    for row in rows:
        if row.notebook:
            title = f"[{row.number} {row.title}]({row.notebook})"
            colab = f"[![{words['open']}](images/colab-badge.svg)]({row.colab_url})"
        else:
            title, colab = f"{row.number} {row.title} ({words['being written']})", "—"
        cells = [title, _cpu_cell(row, words), words["yes" if row.gpu_at_7b else "no"],
                 _t4_cell(row, words), colab]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def page_table(text: str) -> str:
    """What stands between the markers of a page (the table written there last)."""
    if START not in text or END not in text:
        raise ValueError(f"the page has no chapter map between {START} and {END}")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write(edition: str) -> Path:
    """Rewrite the table between the markers of the edition's intro.md; return its path."""
    page = edition_dir(edition) / "intro.md"
    text = page.read_text(encoding="utf-8")
    page_table(text)  # the markers are there
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    page.write_text(f"{before}{START}\n{markdown_table(edition)}\n{END}{after}", encoding="utf-8")
    return page


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print or write the preface's chapter map.")
    parser.add_argument("--edition", choices=sorted(WORDS), default="en")
    parser.add_argument("--write", action="store_true", help="update both intro.md pages")
    args = parser.parse_args(argv)
    if args.write:
        for edition in WORDS:
            print(f"wrote the chapter map into book/{write(edition).relative_to(_root() / 'book')}")
    else:
        print(markdown_table(args.edition))
    return 0


if __name__ == "__main__":
    sys.exit(main())
