"""The two editions: which one runs, the same code drawing English or Chinese labels, and a
Chinese label for every label of the package and of the chapters."""

from __future__ import annotations

import ast
import io
import json
import logging
import re
import string
import sys
import types
import urllib.error
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import pytest
from helpers import cell_source, code_cells, needs_cjk_font

from ift_tutorial import i18n
from ift_tutorial.book import diagrams, notebook, plots
from ift_tutorial.errors import UserFacingError
from ift_tutorial.i18n import ZH, MissingTranslationWarning, edition, set_edition, t

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if "_build" not in p.parts)
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    """No edition chosen, no hint from the environment, an English working folder."""
    for name in (i18n.LANG_ENV, "JPY_SESSION_NAME", "COLAB_JUPYTER_IP", "KMP_TARGET_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(i18n, "_warned", set())
    monkeypatch.chdir(tmp_path)
    set_edition(None)
    i18n._colab_session_paths.cache_clear()
    yield
    set_edition(None)
    i18n._colab_session_paths.cache_clear()


def _zh_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "book" / "zh" / "chapters"
    folder.mkdir(parents=True)
    return folder


# --- which edition runs ------------------------------------------------------------------


def test_english_by_default():
    assert edition() == "en"


def test_the_environment_wins_over_everything(monkeypatch, tmp_path):
    monkeypatch.chdir(_zh_folder(tmp_path))
    monkeypatch.setenv("JPY_SESSION_NAME", "book/zh/chapters/02_attention.ipynb")
    set_edition("zh")
    monkeypatch.setenv("IFT_LANG", "en")
    assert edition() == "en"
    monkeypatch.setenv("IFT_LANG", "zh")
    set_edition("en")
    assert edition() == "zh"
    monkeypatch.setenv("IFT_LANG", "")  # empty: as if unset
    assert edition() == "en"  # set_edition's choice


@pytest.mark.parametrize("value", ["fr", "chinese", "zh-CN"])
def test_an_invalid_environment_value_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("IFT_LANG", value)
    with pytest.raises(UserFacingError) as err:
        edition()
    message = str(err.value)
    assert "IFT_LANG" in message and repr(value) in message and "en, zh" in message


def test_set_edition_wins_over_the_paths_and_rejects_unknown_editions(monkeypatch, tmp_path):
    monkeypatch.chdir(_zh_folder(tmp_path))
    assert edition() == "zh"
    set_edition("en")
    assert edition() == "en"
    set_edition(None)
    assert edition() == "zh"
    with pytest.raises(UserFacingError, match="'de'.*en, zh"):
        set_edition("de")


@pytest.mark.parametrize("path, lang", [
    ("book/zh/chapters/02_attention.ipynb", "zh"),
    ("/home/reader/ift-tutorial/book/zh/chapters/02_attention.ipynb", "zh"),
    ("C:\\Users\\reader\\ift-tutorial\\book\\zh\\chapters\\02_attention.ipynb", "zh"),
    ("book/chapters/02_attention.ipynb", "en"),
    ("book/zhongwen/02_attention.ipynb", "en"),  # a folder whose name starts with zh
    ("book/chapters/zh", "en"),  # the file's own name is no folder
])
def test_the_jupyter_servers_notebook_path(monkeypatch, path, lang):
    monkeypatch.setenv("JPY_SESSION_NAME", path)
    assert edition() == lang


def _fake_ipython(monkeypatch, session: object) -> None:
    shell = types.SimpleNamespace(user_ns={"__session__": session})
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_ipythons_session_path(monkeypatch):
    _fake_ipython(monkeypatch, "/work/book/zh/chapters/04_transformer.ipynb")
    assert edition() == "zh"
    _fake_ipython(monkeypatch, "/work/book/chapters/04_transformer.ipynb")
    assert edition() == "en"


def test_a_failing_source_is_skipped_quietly(monkeypatch, tmp_path):
    module = types.ModuleType("IPython")

    def broken():
        raise RuntimeError("no shell")

    module.get_ipython = broken
    monkeypatch.setitem(sys.modules, "IPython", module)
    monkeypatch.chdir(_zh_folder(tmp_path))
    assert edition() == "zh"  # the working folder still counts


GITHUB_ZH = ("fileId=https%3A%2F%2Fgithub.com%2Fift-tutorial%2Fift-tutorial%2Fblob%2Fmain"
             "%2Fbook%2Fzh%2Fchapters%2F02_attention.ipynb")
GITHUB_EN = GITHUB_ZH.replace("%2Fzh%2F", "%2F")


class _Sessions:
    """A stand-in for Colab's Jupyter server: records the requests, answers ``sessions``."""

    def __init__(self, sessions: object = None, error: Exception | None = None):
        self.sessions, self.error, self.requests = sessions, error, []

    def __call__(self, url, timeout=None):
        self.requests.append((url, timeout))
        if self.error is not None:
            raise self.error
        return io.BytesIO(json.dumps(self.sessions).encode())


def _colab(monkeypatch, server: _Sessions) -> None:
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(i18n.urllib.request, "urlopen", server)


def test_colabs_session_list_gives_the_github_path(monkeypatch):
    server = _Sessions([{"name": "02_attention.ipynb", "path": GITHUB_ZH, "kernel": {"id": "k1"}}])
    _colab(monkeypatch, server)
    assert edition() == "zh"
    assert edition() == "zh"
    assert server.requests == [("http://172.28.0.12:9000/api/sessions", 2)]  # asked once


def test_colabs_address_comes_from_its_environment(monkeypatch):
    server = _Sessions([{"name": "02_attention.ipynb", "path": GITHUB_EN}])
    _colab(monkeypatch, server)
    monkeypatch.setenv("COLAB_JUPYTER_IP", "10.0.0.7")
    monkeypatch.setenv("KMP_TARGET_PORT", "9123")
    assert edition() == "en"
    assert server.requests == [("http://10.0.0.7:9123/api/sessions", 2)]


def test_colab_prefers_this_kernels_session(monkeypatch):
    server = _Sessions([{"name": "a.ipynb", "path": GITHUB_ZH, "kernel": {"id": "other"}},
                        {"name": "b.ipynb", "path": GITHUB_EN, "kernel": {"id": "mine"}}])
    _colab(monkeypatch, server)
    monkeypatch.setattr(i18n, "_kernel_id", lambda: "mine")
    assert edition() == "en"


@pytest.mark.parametrize("server", [
    _Sessions(error=urllib.error.URLError("timed out")),
    _Sessions({"message": "not a list"}),
    _Sessions(["garbage", 3]),
])
def test_an_unreachable_or_odd_colab_server_means_no_path(monkeypatch, server):
    _colab(monkeypatch, server)
    assert edition() == "en"
    assert edition() == "en"
    assert len(server.requests) == 1  # a failure is remembered too: no 2 s wait per label


def test_without_colab_its_server_is_never_asked(monkeypatch):
    server = _Sessions([{"path": GITHUB_ZH}])
    monkeypatch.setattr(i18n.urllib.request, "urlopen", server)
    assert edition() == "en" and server.requests == []


def test_the_working_folder(monkeypatch, tmp_path):
    folder = _zh_folder(tmp_path)
    monkeypatch.chdir(folder)
    assert edition() == "zh"
    monkeypatch.chdir(folder.parent.parent)  # book/ itself
    assert edition() == "en"


def test_setup_notebook_decides_once_and_styles_for_chinese(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "")  # setup_notebook sets it; restored
    monkeypatch.delenv("IFT_PRESET", raising=False)
    monkeypatch.chdir(_zh_folder(tmp_path))
    styled = []
    monkeypatch.setattr(notebook, "set_plot_style", lambda lang="en": styled.append(lang))
    assert notebook.setup_notebook(default="tiny") == "tiny"
    assert styled == ["zh"]
    monkeypatch.chdir(tmp_path)
    assert edition() == "zh"  # kept: set_edition was called with it
    capsys.readouterr()
    monkeypatch.setenv("IFT_LANG", "jp")
    with pytest.raises(UserFacingError, match="IFT_LANG"):
        notebook.setup_notebook(default="tiny")
    assert capsys.readouterr().out == ""  # before anything is printed


def test_the_chinese_plot_style_uses_a_cjk_font_or_says_what_to_install(monkeypatch):
    from ift_tutorial.book import fonts

    with matplotlib.rc_context():
        font = notebook.set_plot_style("zh")
        if font is not None:
            assert matplotlib.rcParams["font.family"][-1] == font
    monkeypatch.setattr(fonts, "CJK_FAMILIES", ())
    with matplotlib.rc_context(), pytest.warns(fonts.MissingCJKFontWarning, match="fonts-noto-cjk"):
        assert notebook.set_plot_style("zh") is None
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert notebook.set_plot_style("en") is None  # English figures: nothing to say


# --- the labels ----------------------------------------------------------------------------


def test_english_labels_are_the_text_itself():
    set_edition("en")
    assert t("training loss") == "training loss"
    assert t("last layer, head {h}", h=2) == "last layer, head 2"
    assert t("a set {like this}") == "a set {like this}"  # no fields: not formatted
    assert t("nothing in the catalogue") == "nothing in the catalogue"  # and no warning


def test_chinese_labels_come_from_the_catalogue():
    set_edition("zh")
    assert t("training loss") == "训练损失"
    assert t("step") == "步数"
    assert t("key position") == "键的位置"
    assert t("last layer, head {h}", h=2) == "最后一层，第 2 个头"
    assert t("≈ {bits:.2f} bits per weight in memory", bits=4.127) == "显存中每个权重约 4.13 位"


def test_a_missing_chinese_label_is_drawn_in_english_with_one_warning_naming_it():
    set_edition("zh")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert t("no such label {n}", n=1) == "no such label 1"
        assert t("no such label {n}", n=2) == "no such label 2"  # once per label
        assert t("another missing one") == "another missing one"
    assert [(w.category, str(w.message)) for w in caught] == [
        (MissingTranslationWarning, "no Chinese label for 'no such label {n}' in "
                                    "ift_tutorial.i18n.ZH: drawn in English"),
        (MissingTranslationWarning, "no Chinese label for 'another missing one' in "
                                    "ift_tutorial.i18n.ZH: drawn in English"),
    ]


def test_under_w_error_a_missing_label_fails():
    set_edition("zh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MissingTranslationWarning):
            t("a label nobody translated")


# --- every label of the package and the chapters has a Chinese entry ------------------------


def _fields(text: str) -> set[str]:
    return {re.split(r"[.\[]", name)[0] for _, name, _, _ in string.Formatter().parse(text)
            if name is not None}


def _code_cells(path: Path):
    for cell in code_cells(path):
        source = cell_source(cell)
        if not source.lstrip().startswith("%%"):
            # IPython's line magics and shell escapes are no Python: blank them out
            yield cell.get("id"), re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", source)


def _sources():
    """(where, parsed module) for every package module and every notebook code cell."""
    for path in sorted((ROOT / "ift_tutorial").rglob("*.py")):
        yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))
    for path in NOTEBOOKS:
        for cell_id, source in _code_cells(path):
            yield f"{path.relative_to(ROOT)} cell {cell_id}", ast.parse(source)


def _is_t(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "t") or (
        isinstance(func, ast.Attribute) and func.attr == "t"
        and isinstance(func.value, ast.Name) and func.value.id == "i18n")


def _t_calls():
    """(where, line, first argument, keyword names or None for **kwargs) of every t(...)."""
    for where, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_t(node.func) and node.args:
                names = [k.arg for k in node.keywords]
                yield where, node.lineno, node.args[0], None if None in names else set(names)


def test_every_literal_label_has_a_chinese_entry_with_the_same_fields():
    literals, problems = [], []
    for where, line, arg, keywords in _t_calls():
        at = f"{where}, line {line}"
        if isinstance(arg, ast.JoinedStr):
            problems.append(f"{at}: t() of an f-string cannot be looked up; pass fields instead")
            continue
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            continue  # t(name): the dynamic labels are checked below
        text = arg.value
        literals.append((where, text))
        if text not in ZH:
            problems.append(f"{at}: no Chinese entry for {text!r}")
        elif _fields(ZH[text]) != _fields(text):
            problems.append(f"{at}: {text!r} has fields {sorted(_fields(text))}, its Chinese "
                            f"entry {sorted(_fields(ZH[text]))}")
        if keywords is not None and keywords != _fields(text):
            problems.append(f"{at}: t({text!r}) is given {sorted(keywords)}, "
                            f"needs {sorted(_fields(text))}")
    assert not problems, "\n".join(problems)
    # the scan found the labels: the package's and at least 30 of the chapters'
    assert sum(w.startswith("ift_tutorial") for w, _ in literals) > 60
    assert sum(w.startswith("book") for w, _ in literals) > 30


def test_labels_named_at_run_time_have_chinese_entries():
    """plot_plan, plot_metrics_before_after and chapter 4 pass names from data to t()."""
    from ift_tutorial.planning.architectures import architecture_config
    from ift_tutorial.evaluation.report import TABLE_ROWS
    from ift_tutorial.scratch.llama import COMPONENTS
    from ift_tutorial.planning.memory import plan_memory
    from ift_tutorial.planning.sharding import STRATEGIES

    arch, size = architecture_config("Qwen/Qwen2.5-7B"), {"seq_len": 16, "batch_size": 1}
    plans = [plan_memory(arch, **size, load_in_4bit=False)]
    plans += [plan_memory(arch, **size, strategy=s, num_gpus=4) for s in STRATEGIES]
    names = {*(name for plan in plans for name in plan.components),
             *COMPONENTS, *(label for label, _ in TABLE_ROWS)}
    assert not sorted(n for n in names if n not in ZH)


def test_every_chinese_entry_is_used_and_draws_no_maths_text():
    """An entry whose English label appears nowhere is stale; Chinese inside ``$...$`` would
    go through mathtext, which has no CJK glyphs."""
    constants = {node.value for _, tree in _sources() for node in ast.walk(tree)
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    examples = set(re.findall(r'\bt\("([^"\\]*)"', (ROOT / "ift_tutorial" / "i18n.py").read_text()))
    assert not sorted(k for k in ZH if k not in constants | examples)
    assert not [v for v in ZH.values() if CJK.search(v) and re.search(r"(?<!\\)\$", v)]
    assert not [k for k, v in ZH.items() if k == v]  # a copy of the English is no translation


# --- drawn in Chinese: real glyphs, nothing missing -------------------------------------------


MISSING = re.compile(r"Glyph \d+ .* missing from font|does not have a glyph")


class _Logged(logging.Handler):
    """Matplotlib's mathtext logs its missing glyphs ("Font 'default' does not have a glyph")."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _draw(fig) -> list[str]:
    """The missing-glyph messages of drawing ``fig``, warned or logged."""
    logged, logger = _Logged(), logging.getLogger("matplotlib")
    logger.addHandler(logged)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.savefig(io.BytesIO(), format="png")
    finally:
        logger.removeHandler(logged)
        plt.close(fig)
    return [m for m in [str(w.message) for w in caught] + logged.messages if MISSING.search(m)]


def test_the_glyph_check_sees_both_kinds_of_missing_glyph():
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        fig = plt.figure()
        fig.text(0.1, 0.5, "分")  # a plain text: warned
        fig.text(0.1, 0.1, "数 $x$")  # a maths text: logged
        assert len(_draw(fig)) >= 2


@needs_cjk_font
def test_the_package_figures_draw_in_chinese_without_missing_glyphs():
    set_edition("zh")
    with matplotlib.rc_context():
        notebook.set_plot_style("zh")  # before drawing: a text takes its font when made
        figures = [diagrams.attention_flow(cross=True), diagrams.encoder_decoder_vs_decoder_only(),
                   diagrams.llama_block(), diagrams.lora_layer(), diagrams.qlora_dataflow(),
                   plots.plot_loss([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.5}]),
                   plots.plot_label_mask(["你", "好"], [-100, 7]),
                   plots.plot_token_lengths({"train": [3, 90]}, max_length=64)]
        texts = [x.get_text() for fig in figures for ax in fig.axes for x in ax.texts]
        assert "交叉注意力：K 和 V 来自另一个序列" in texts and "残差" in texts
        missing = [m for fig in figures for m in _draw(fig)]
    assert missing == []


@needs_cjk_font
def test_every_chinese_entry_draws_without_missing_glyphs():
    """The chapters' labels too: each entry drawn once, as a figure would draw it."""
    with matplotlib.rc_context():
        notebook.set_plot_style("zh")
        fig = plt.figure(figsize=(8, 2))
        for i, text in enumerate(ZH.values()):
            fig.text(0.01, i / len(ZH), text, fontsize=6)
        assert _draw(fig) == []
