"""The book's sources follow the notebook policy, and the built book renders.

The first group reads the sources only. The second group needs the built book
(``make book``) and, for what a browser shows, Debian's ``chromium``: it renders pages
headless and checks that formulas are typeset by the local MathJax, that figures are
shown and that each page's Colab button opens that page's notebook. Where the build or
Chromium is missing these tests skip, unless ``IFT_BOOK_TESTS=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from helpers import (BOOK, EXECUTED, HTML, ROOT, cell_source, chapter_notebooks, chapter_pages, chromium,
                     code_outputs, dump_dom, math_count, notebook_cells, read_notebook, require)

CONFIG = yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))
REPO_URL = CONFIG["repository"]["url"]

SETUP_CELL = f'''# Setup: on Colab, clone the book's repository and install the package;
# elsewhere nothing happens.
import os, subprocess, sys
from importlib.metadata import version
REPO_URL = "{REPO_URL}"  # as in _config.yml
PRESET = "tiny"  # @param ["tiny", "qwen2.5-7b", "llama-3.1-8b", "olmo-2-7b"]
RUNS_ON_DRIVE = True  # @param {{type: "boolean"}}
if "google.colab" in sys.modules and not os.path.isdir("ift-tutorial"):
    subprocess.run(["git", "clone", "--depth", "1", REPO_URL], check=True)
    # The tested Hugging Face stack and bitsandbytes; torch stays Colab's CUDA build.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "-c", "ift-tutorial/constraints-colab.txt", "-e", "ift-tutorial",
                    f"torch=={{version('torch')}}"], check=True)
    sys.path.insert(0, os.path.abspath("ift-tutorial"))
from ift_tutorial.book.notebook import setup_notebook
# IFT_PRESET, if set, wins over the form's PRESET.
PRESET = setup_notebook(default=PRESET, runs_on_drive=RUNS_ON_DRIVE)'''


def book_notebooks() -> list[Path]:
    """Every notebook of the book's sources (not the build, not Jupyter's checkpoints)."""
    return sorted(
        p for p in BOOK.rglob("*.ipynb")
        if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts
    )


def colab_url(stem: str) -> str:
    """The Colab address of a chapter notebook, from the repository settings of _config.yml."""
    repo = CONFIG["repository"]
    org_repo = repo["url"].removeprefix("https://github.com/").rstrip("/")
    return (
        f"{CONFIG['launch_buttons']['colab_url']}/github/{org_repo}/blob/{repo['branch']}/"
        f"{repo['path_to_book']}/chapters/{stem}.ipynb"
    )


def toc_files() -> list[str]:
    """Every ``file`` entry of _toc.yml, the root first."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


def test_there_are_chapters():
    assert len(chapter_notebooks()) >= 10


@pytest.mark.parametrize("path", book_notebooks(), ids=lambda p: p.name)
def test_committed_notebooks_have_stripped_outputs(path):
    nb = read_notebook(path)
    dirty = [
        i for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.relative_to(ROOT)}: cells {dirty} have outputs or execution counts; clear them "
        "(jupyter nbconvert --clear-output --inplace) before committing"
    )
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel must be python3"


@pytest.mark.parametrize("path", chapter_notebooks(), ids=lambda p: p.name)
def test_chapter_starts_with_title_badge_and_setup_cell(path):
    cells = notebook_cells(path)
    title, setup = cells[0], cells[1]
    assert title["cell_type"] == "markdown"
    first_line = cell_source(title).splitlines()[0]
    if path.stem[:2].isdigit():
        assert first_line.startswith(f"# Chapter {int(path.stem[:2])}: "), first_line
    else:
        assert first_line.startswith("# Appendix"), first_line
    # The badge is a file of the book (book/images/colab-badge.svg): the page reads offline.
    badge = f"[![Open In Colab](../images/colab-badge.svg)]({colab_url(path.stem)})"
    assert badge in cell_source(title), f"{path.name}: the Colab badge must be {badge}"
    assert setup["cell_type"] == "code"
    assert f'REPO_URL = "{REPO_URL}"' in cell_source(setup), "REPO_URL must equal repository.url of _config.yml"
    assert cell_source(setup).strip() == SETUP_CELL, f"{path.name}: the setup cell differs from the book's convention"


def test_every_toc_entry_exists_and_every_chapter_is_listed():
    files = toc_files()
    missing = [f for f in files if not any((BOOK / f"{f}{ext}").is_file() for ext in (".md", ".ipynb"))]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    assert len(files) == len(set(files)), "a file is listed twice in _toc.yml"
    listed = {f for f in files if f.startswith("chapters/")}
    unlisted = [p.name for p in chapter_notebooks() if f"chapters/{p.stem}" not in listed]
    assert not unlisted, f"chapter notebooks missing from _toc.yml: {unlisted}"


def test_config_executes_with_cache_and_serves_mathjax_locally():
    assert CONFIG["execute"]["execute_notebooks"] == "cache"
    assert CONFIG["only_build_toc_files"] is True
    assert "://" not in CONFIG["sphinx"]["config"]["mathjax_path"]
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


# --- The built book -----------------------------------------------------------------


@pytest.fixture(scope="module")
def built():
    require((HTML / "index.html").is_file(), "the book is not built: run `make book` first")
    return HTML


@pytest.fixture(scope="module")
def rendered(built):
    """Rendered DOM of every chapter page (two Chromium processes at a time)."""
    require(chromium() is not None, "chromium is not installed (Debian: apt-get install chromium)")
    pages = chapter_pages(built)
    with ThreadPoolExecutor(max_workers=2) as pool:
        doms = dict(zip(pages, pool.map(dump_dom, pages.values())))
    return doms


def test_built_pages_load_no_script_from_the_network(built):
    remote = {}
    for page in built.rglob("*.html"):
        srcs = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page.read_text(encoding="utf-8"))
        bad = [s for s in srcs if "://" in s or s.startswith("//")]
        if bad:
            remote[str(page.relative_to(built))] = bad
    assert not remote, f"pages load scripts from the network: {remote}"
    assert (built / "_static" / "mathjax" / "tex-chtml.js").is_file(), "the local MathJax was not copied"


def test_formulas_are_typeset_by_the_local_mathjax(built, rendered):
    pages = chapter_pages(built)
    with_math = {stem: math_count(p.read_text(encoding="utf-8")) for stem, p in pages.items()}
    with_math = {stem: n for stem, n in with_math.items() if n}
    assert {"02_attention", "appendix_errata"} <= set(with_math), f"formulas expected, found in: {sorted(with_math)}"
    for stem, n in with_math.items():
        static = pages[stem].read_text(encoding="utf-8")
        assert "_static/mathjax/tex-chtml.js" in static, f"{stem}: MathJax is not loaded from the book"
        dom = rendered[stem]
        typeset = dom.count("<mjx-container")
        assert typeset >= n, f"{stem}: {n} formulas in the page, {typeset} typeset by MathJax"
        assert "<mjx-merror" not in dom, f"{stem}: MathJax reports a TeX error"


FIGURE_TYPES = ("image/png", "image/svg+xml")  # the chapters draw SVG (setup_notebook)


def _figure_outputs(executed: Path) -> int:
    return sum(any(kind in out.get("data", {}) for kind in FIGURE_TYPES)
               for out in code_outputs(executed))


def test_figures_are_shown(built, rendered):
    figures = {p.stem: _figure_outputs(p)
               for p in sorted((EXECUTED / "chapters").glob("*.ipynb"))}
    figures = {stem: n for stem, n in figures.items() if n}
    assert "appendix_errata" in figures, "the errata appendix draws a loss curve: no figure found"
    for stem, n in figures.items():
        srcs = re.findall(r'<img[^>]*\ssrc="(\.\./_images/[^"]+\.(?:png|svg))"', rendered[stem])
        srcs = [src for src in srcs if "colab-badge" not in src]
        assert len(srcs) >= n, f"{stem}: {n} figures executed, {len(srcs)} shown"
        for src in srcs:
            assert (built / "chapters" / src).resolve().is_file(), f"{stem}: {src} is missing"


def test_colab_button_opens_the_pages_own_notebook(built, rendered):
    for stem, dom in rendered.items():
        links = set(re.findall(r'href="(https://colab\.research\.google\.com/github/[^"]+)"', dom))
        assert links == {colab_url(stem)}, f"{stem}: Colab links {sorted(links)}"


# --- What a reader must not see in outputs ----------------------------------------------

#: Machine paths, progress-bar lines and library warnings (ift_tutorial.paths.display_path,
#: ift_tutorial.training.progress and ift_tutorial.quiet keep them out of the outputs); transformers 5
#: starts its log lines with "[transformers]".
NOISE = re.compile(r"/root|/home|/tmp|/content|site-packages|it/s\]|Warning|\[transformers\]")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


class _CellOutputs(HTMLParser):
    """Collects the text of every ``cell_output`` element of a page (nested markup included)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.outputs: list[str] = []
        self._depth = 0  # > 0 inside a cell output
        self._code = 0  # > 0 inside <style> or <script> (a pandas table brings its CSS)

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        self._code += tag in ("style", "script")
        if self._depth:
            self._depth += 1
        elif tag == "div" and "cell_output" in (dict(attrs).get("class") or "").split():
            self._depth = 1
            self.outputs.append("")

    def handle_endtag(self, tag):
        self._code -= tag in ("style", "script")
        if self._depth and tag not in _VOID:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth and not self._code:
            self.outputs[-1] += data


def cell_outputs(page_html: str) -> list[str]:
    """The text of each cell output of a built page, in order."""
    parser = _CellOutputs()
    parser.feed(page_html)
    return parser.outputs


def test_cell_outputs_are_extracted_with_their_nested_markup():
    page = (
        '<div class="cell docutils container"><div class="cell_input"><pre>print(1)</pre></div>'
        '<div class="cell_output docutils container"><div class="output stream"><div>'
        '<pre>a<br>b &amp; <span>/tmp/x</span></pre></div></div></div>'
        '<p>prose about /tmp is not an output</p>'
        '<div class="cell_output docutils container"><img src="x.png"><style>td {}</style>'
        '<pre>Loading: 5.1it/s]</pre></div>'
    )
    assert cell_outputs(page) == ["ab & /tmp/x", "Loading: 5.1it/s]"]
    assert [NOISE.search(t).group() for t in cell_outputs(page)] == ["/tmp", "it/s]"]


def test_outputs_show_no_machine_paths_progress_bars_or_warnings(built):
    pages = sorted(p for p in built.rglob("*.html") if "_static" not in p.parts)
    outputs = {p: cell_outputs(p.read_text(encoding="utf-8")) for p in pages}
    assert sum(len(o) > 0 for o in outputs.values()) >= 8, "too few pages with cell outputs"
    found = {}
    for page, texts in outputs.items():
        hits = [t[max(0, m.start() - 60):m.end() + 60].replace("\n", " ")
                for t in texts for m in NOISE.finditer(t)]
        if hits:
            found[str(page.relative_to(built))] = hits[:3] + ([f"... {len(hits)} in all"] if len(hits) > 3 else [])
    assert not found, "noise in cell outputs:\n" + json.dumps(found, indent=1, ensure_ascii=False)

