"""Every chapter is built like a chapter of a good textbook.

Learning goals at the top, a Summary and at least three exercises at the end, each
exercise with a solution that is a code cell checking its answer; the setup cell and the
cells that only check (asserts) are collapsed or hidden in the HTML, so that a reader sees
prose, teaching code and outputs. Both editions are held to it (the Chinese headings are
小结 and 练习).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers import BOOK, cell_source, code_cells, code_sources, notebook_cells

CHAPTERS = sorted((BOOK / "chapters").glob("[0-9][0-9]_*.ipynb"))
HIDDEN = {"hide-input", "remove-input", "remove-cell", "hide-cell"}
EDITIONS = {"en": ("**Learning goals.**", "## Summary", "## Exercises"),
            "zh": ("**学习目标。**", "## 小结", "## 练习")}


def _notebooks() -> list[tuple[str, Path]]:
    out = [("en", p) for p in CHAPTERS]
    out += [("zh", BOOK / "zh" / "chapters" / p.name) for p in CHAPTERS
            if (BOOK / "zh" / "chapters" / p.name).is_file()]
    return out


@pytest.mark.parametrize("lang,path", _notebooks(), ids=lambda x: getattr(x, "name", x))
def test_goals_summary_and_three_exercises_with_checking_solutions(lang, path):
    goals, summary, exercises = EDITIONS[lang]
    cells = notebook_cells(path)
    markdown = [cell_source(c) for c in cells if c["cell_type"] == "markdown"]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert any(goals in cell_source(c) for c in cells[: first_code + 3]), "no learning goals at the top"
    headings = {line.strip() for m in markdown for line in m.splitlines() if line.startswith("#")}
    assert summary in headings and exercises in headings, f"no {summary} or no {exercises}"
    labels = re.findall(r":::\{exercise\}[^\n]*\n:label: (\S+)", "\n".join(markdown))
    assert len(labels) >= 3, f"{len(labels)} exercises"
    for label in labels:
        start = next(i for i, c in enumerate(cells)
                     if re.match(rf"```\{{solution-start\}} {re.escape(label)}\b", cell_source(c)))
        end = next(i for i in range(start, len(cells)) if "{solution-end}" in cell_source(cells[i]))
        code = code_sources(cells[start:end])
        assert code and any("assert" in c for c in code), f"{label}: no checking solution cell"
        assert ":class: dropdown" in cell_source(cells[start]), f"{label}: the solution is not a toggle"


@pytest.mark.parametrize("path", CHAPTERS + sorted((BOOK / "chapters").glob("appendix_*.ipynb")),
                         ids=lambda p: p.name)
def test_setup_and_check_only_cells_are_collapsed(path):
    code = code_cells(path)
    assert HIDDEN & set(code[0].get("metadata", {}).get("tags", [])), "the setup cell is not collapsed"
    for cell in code[1:]:
        body = ast.parse(cell_source(cell)).body
        if body and all(isinstance(node, ast.Assert) for node in body):
            assert HIDDEN & set(cell.get("metadata", {}).get("tags", [])), cell_source(cell)[:80]
