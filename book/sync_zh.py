"""Keep the Chinese edition's notebooks in step with the English ones.

The Chinese twin of ``book/chapters/NN_name.ipynb`` is ``book/zh/chapters/NN_name.ipynb``.
Its code cells are the English notebook's code cells, byte for byte (source and
metadata); only the markdown cells are Chinese. Cells are matched by their ``id``, which
the twin inherits from the English notebook when it is first created.

    python book/sync_zh.py          # copy code cells over, report what needs translating
    python book/sync_zh.py --check  # exit 1 if any twin is missing or out of step

A twin that does not exist yet starts as a copy of the English notebook (English markdown
to be translated). Markdown cells that appear in English later are inserted in English at
their place and reported; Chinese cells whose English cell is gone are dropped and
reported. Nothing is dropped silently.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

BOOK = Path(__file__).resolve().parent
ENGLISH = BOOK / "chapters"
CHINESE = BOOK / "zh" / "chapters"
_CJK = re.compile(r"[\u4e00-\u9fff]")
# Markdown cells that are pure markup (a solution's fences) read the same in both editions.
_MARKUP_ONLY = re.compile(r"^\s*```\{solution-(start|end)\}[^\n]*\n(:class:[^\n]*\n)?```\s*$")


@dataclass
class Report:
    """What a sync found in one notebook pair."""

    name: str
    created: bool = False
    code_updated: int = 0
    untranslated: list[str] = field(default_factory=list)  # cell ids still in English
    dropped: list[str] = field(default_factory=list)  # Chinese cells with no English cell

    @property
    def in_step(self) -> bool:
        return not (self.created or self.code_updated or self.dropped)


def needs_translation(cell: dict) -> bool:
    """True for a markdown cell that has words but no Chinese character yet."""
    text = "".join(cell["source"])
    if cell["cell_type"] != "markdown" or _MARKUP_ONLY.match(text) or not text.strip():
        return False
    return _CJK.search(text) is None


def read_notebook(path: Path) -> dict:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def write_notebook(path: Path, nb: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def merged(english: dict, chinese: dict | None, report: Report) -> dict:
    """The twin: English code cells and notebook metadata, Chinese markdown where it exists."""
    translated = {c["id"]: c for c in (chinese or {"cells": []})["cells"]
                  if c["cell_type"] == "markdown"}
    old_code = {c["id"]: c for c in (chinese or {"cells": []})["cells"] if c["cell_type"] == "code"}
    cells = []
    for cell in english["cells"]:
        if cell["cell_type"] == "code":
            new = copy.deepcopy(cell)
            old = old_code.get(cell["id"])
            if old is None or old["source"] != new["source"] or old.get("metadata") != new.get("metadata"):
                report.code_updated += chinese is not None
            cells.append(new)
            continue
        new = copy.deepcopy(translated.pop(cell["id"], cell))
        if needs_translation(new):
            report.untranslated.append(cell["id"])
        cells.append(new)
    english_ids = {c["id"] for c in english["cells"]}
    report.dropped = [i for i in [c["id"] for c in (chinese or {"cells": []})["cells"]]
                      if i not in english_ids]
    twin = copy.deepcopy(english)
    twin["cells"] = cells
    return twin


def sync(check: bool = False) -> list[Report]:
    """Bring every twin in step (or, with ``check``, only compare)."""
    reports = []
    for path in sorted(ENGLISH.glob("*.ipynb")):
        twin_path = CHINESE / path.name
        report = Report(path.name, created=not twin_path.exists())
        chinese = None if report.created else read_notebook(twin_path)
        twin = merged(read_notebook(path), chinese, report)
        if not check and (chinese is None or twin != chinese):
            write_notebook(twin_path, twin)
        reports.append(report)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if out of step")
    args = parser.parse_args(argv)
    reports = sync(check=args.check)
    out_of_step = 0
    for r in reports:
        parts = []
        if r.created:
            parts.append("missing" if args.check else "created from the English notebook")
        if r.code_updated:
            parts.append(f"{r.code_updated} code cells {'differ' if args.check else 'updated'}")
        if r.dropped:
            parts.append(f"{len(r.dropped)} Chinese cells without an English cell "
                         f"({'would be ' if args.check else ''}dropped: {', '.join(r.dropped)})")
        if r.untranslated:
            parts.append(f"{len(r.untranslated)} markdown cells still in English "
                         f"({', '.join(r.untranslated)})")
        out_of_step += not r.in_step
        print(f"zh/chapters/{r.name}: {'; '.join(parts) if parts else 'in step'}")
    return 1 if args.check and out_of_step else 0


if __name__ == "__main__":
    sys.exit(main())
