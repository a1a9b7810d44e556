"""Every line of every code cell fits the page: at most 88 characters, in both editions.

A longer line makes the reader scroll sideways in the built book, and 88 is the width
the package's own code keeps. The failure lists each offender by notebook, cell and line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import BOOK, cell_source, notebook_cells

MAX_WIDTH = 88
NOTEBOOKS = sorted([*(BOOK / "chapters").glob("*.ipynb"), *(BOOK / "zh" / "chapters").glob("*.ipynb")])


def too_wide(path: Path, width: int = MAX_WIDTH) -> list[str]:
    """'cell C, line L (N chars): text' for each code line wider than ``width``."""
    found = []
    for c, cell in enumerate(notebook_cells(path)):
        if cell["cell_type"] != "code":
            continue
        for n, line in enumerate(cell_source(cell).split("\n"), start=1):
            if len(line) > width:
                found.append(f"cell {c}, line {n} ({len(line)} chars): {line[:50]}...")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(BOOK)))
def test_code_lines_fit_the_page(path):
    offenders = too_wide(path)
    assert not offenders, (f"{path.relative_to(BOOK)}: {len(offenders)} code lines over "
                           f"{MAX_WIDTH} characters:\n" + "\n".join(offenders))


def test_the_width_rule_counts_characters(tmp_path):
    notebook = tmp_path / "n.ipynb"
    notebook.write_text('{"cells": [{"cell_type": "code", "source": ["x = 1\\n", "'
                        + "y" * 89 + '"]}, {"cell_type": "markdown", "source": "'
                        + "z" * 200 + '"}]}', encoding="utf-8")
    assert too_wide(notebook) == [f"cell 0, line 2 (89 chars): {'y' * 50}..."]
    assert too_wide(notebook, width=89) == []
