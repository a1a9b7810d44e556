"""What several test modules share; test modules import it, never each other.

Import it as ``from helpers import ...``: pytest's default (prepend) import mode puts the
folder of the rootdir's conftest.py, ``tests/``, on ``sys.path``, so this works from
``tests/`` and from every subfolder of it.

Four groups:

- the repository's folders (``ROOT``, ``BOOK``, ``CHAPTERS``, ``HTML``, ``EXECUTED``);
- small runs of the tiny preset: :func:`tiny_config`, :func:`small_train_file`,
  :func:`write_jsonl`;
- reading notebooks: :func:`read_notebook`, :func:`notebook_cells`, :func:`cell_source`,
  :func:`code_cells`, :func:`code_sources`, :func:`code_outputs`, :func:`markdown_text`,
  :func:`markdown_prose`, :func:`chapter_notebooks`, and the patterns of numbered
  headings and figure captions (``NUM``, ``HEADING``, ``CAPTION``);
- the built book: :func:`require`, :func:`chromium`, :func:`chapter_pages`,
  :func:`dump_dom`, :func:`math_count`; and :func:`needs_cjk_font` for figures in Chinese.

The package is imported inside the functions that need it, so that the book's tests,
which only read files, do not depend on it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from functools import cache, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import pytest

if TYPE_CHECKING:
    from ift_tutorial.config import ExperimentConfig

# --- the repository's folders -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = BOOK / "chapters"  # the English chapter notebooks
HTML = BOOK / "_build" / "html"  # the built book (`make book`)
EXECUTED = BOOK / "_build" / "jupyter_execute"  # the executed notebooks of the build
REQUIRE_BUILT_BOOK = os.environ.get("IFT_BOOK_TESTS") == "1"

# --- small runs of the tiny preset ----------------------------------------------------------


def tiny_config(*overrides: str) -> ExperimentConfig:
    """The tiny preset with ``section.key=value`` overrides, applied in order (a later one wins).

    The same as ``load_config("tiny", list(overrides))``; for example
    ``tiny_config("training.max_steps=2", f"data.train={small_train_file(tmp_path / 'train.jsonl', 16)}")``.
    """
    from ift_tutorial.config import load_config

    return load_config("tiny", list(overrides))


def small_train_file(path: Path, n: int) -> Path:
    """Write the first ``n`` conversations of the tiny preset's training tasks to ``path``.

    The lines are copied unchanged from ``data/tasks/train.jsonl`` (one JSON conversation
    a line, with a final newline). Returns ``path``, for a ``data.train=`` override.
    """
    from ift_tutorial.paths import DATA_DIR

    rows = (DATA_DIR / "tasks" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: Iterable[Union[dict, str]]) -> Path:
    """Write one row a line to ``path`` (UTF-8) and return ``path``.

    A dict is written as JSON with non-ASCII characters kept as they are; a string is
    written as it is, so a test can plant a line that is not valid JSON.
    """
    path = Path(path)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                            for r in rows), encoding="utf-8")
    return path


# --- reading notebooks -----------------------------------------------------------------------

#: A section or figure number: 7.7, A.1, 4.2.1.
NUM = r"(?:\d+|[A-Z])\.\d+(?:\.\d+)?"
#: A numbered heading ("## 7.7 ..."): its number.
HEADING = re.compile(rf"(?m)^#{{2,4}}\s+({NUM})\s")
#: An English figure caption ("*Figure 2.1: ..."): its number.
CAPTION = re.compile(rf"(?m)^\*?Figure ({NUM}):")

#: A notebook given as its path, as its loaded JSON, or as a list of its cells.
Notebook = Union[str, os.PathLike, dict, list]


def read_notebook(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON of an ``.ipynb`` file (cells, metadata...), read anew at each call."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def notebook_cells(notebook: Notebook) -> list[dict[str, Any]]:
    """Every cell of a notebook, in order; ``notebook`` is a path, a loaded notebook or its cells."""
    if isinstance(notebook, list):
        return notebook
    if isinstance(notebook, dict):
        return notebook["cells"]
    return read_notebook(notebook)["cells"]


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (nbformat stores it as a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def code_cells(notebook: Notebook) -> list[dict[str, Any]]:
    """The code cells of a notebook (a path, a loaded notebook or a list of cells), in order."""
    return [c for c in notebook_cells(notebook) if c["cell_type"] == "code"]


def code_sources(notebook: Notebook) -> list[str]:
    """The source of each code cell of a notebook (a path, a loaded notebook or a list of cells)."""
    return [cell_source(c) for c in code_cells(notebook)]


def code_outputs(notebook: Notebook) -> list[dict[str, Any]]:
    """Every output of every code cell of an executed notebook, in order."""
    return [out for cell in code_cells(notebook) for out in cell.get("outputs", [])]


def markdown_text(notebook: Notebook) -> str:
    """The markdown cells of a notebook, joined by blank lines."""
    return "\n\n".join(cell_source(c) for c in notebook_cells(notebook) if c["cell_type"] == "markdown")


def markdown_prose(text: str) -> str:
    """Markdown without fenced code blocks and inline code."""
    text = re.sub(r"(?ms)^(```|~~~).*?^\1", "", text)
    return re.sub(r"`[^`\n]*`", "", text)


def chapter_notebooks() -> list[Path]:
    """Every English chapter and appendix notebook (book/chapters/*.ipynb), sorted by name."""
    return sorted(CHAPTERS.glob("*.ipynb"))


# --- the built book ----------------------------------------------------------------------------


def require(condition: bool, reason: str) -> None:
    """Skip (or, with IFT_BOOK_TESTS=1, fail) when the built book, a browser or a font is missing."""
    if condition:
        return
    if REQUIRE_BUILT_BOOK:
        pytest.fail(reason + " (IFT_BOOK_TESTS=1)")
    pytest.skip(reason)


#: What a test that draws Chinese says when no CJK font is installed.
NO_CJK_FONT = "no CJK font installed: apt-get install fonts-noto-cjk (Debian, Ubuntu)"


def needs_cjk_font(test):
    """Decorate a test that draws Chinese: without a CJK font it skips, or with
    IFT_BOOK_TESTS=1 (CI) fails, saying what to install (:func:`require`)."""

    @wraps(test)  # pytest reads the fixtures from the wrapped test's signature
    def checked(*args, **kwargs):
        from ift_tutorial.book.fonts import find_cjk_font

        require(find_cjk_font() is not None, NO_CJK_FONT)
        return test(*args, **kwargs)

    return checked


def chromium() -> str | None:
    """The Chromium to render pages with: $CHROMIUM, else ``chromium`` on the PATH; None if none."""
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def chapter_pages(html: Path) -> dict[str, Path]:
    """The built chapter pages of an edition's HTML folder, by notebook stem."""
    return {p.stem: p for p in sorted((html / "chapters").glob("*.html"))}


@cache
def dump_dom(page: Path) -> str:
    """The DOM after scripts ran (MathJax included), from headless Chromium (cached per page)."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
                "--dump-dom", page.as_uri(),
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert result.returncode == 0 and "</html>" in result.stdout, (
        f"chromium failed on {page}: {result.stderr[-1000:]}"
    )
    return result.stdout


def math_count(static_html: str) -> int:
    """How many formulas a built page holds before MathJax runs."""
    return len(re.findall(r'class="math notranslate nohighlight"', static_html))
