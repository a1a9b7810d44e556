"""Which edition of the book is running, English or Chinese, and the labels of its figures.

The Chinese edition's notebooks (``book/zh/chapters/NN_*.ipynb``) run the English
notebooks' code cells byte for byte; only the prose is translated. So a figure label is
written once, in English, through :func:`t`::

    ax.set_xlabel(t("optimizer step"))   # "optimizer step" here, "优化器步数" in Chinese

and :func:`t` looks it up in :data:`ZH` when the Chinese edition runs. Maths labels
(``r"$d_k$"``) and names (``"NF4"``, ``"Qwen2.5-7B"``) read the same in both editions and
do not go through it; neither do printed outputs, which stay English in both editions.

:func:`edition` decides which edition runs, in this order:

1. ``IFT_LANG`` (``en`` or ``zh``) in the environment;
2. what :func:`set_edition` chose (:func:`ift_tutorial.book.notebook.setup_notebook` calls it
   with the edition it decided, so later calls are cheap and do not change mid-chapter);
3. the notebook's path, Chinese when one of its folders is ``zh``
   (``book/zh/chapters/02_attention.ipynb``), as the Jupyter server (``JPY_SESSION_NAME``),
   JupyterLab or VS Code (IPython's ``__session__``) or Colab's session list report it;
4. the working folder: Jupyter Book, nbclient and nbval run a notebook in its own folder,
   so ``book/zh/chapters`` means Chinese;
5. English.

Chinese text inside a maths label (``"$...$"``) would be drawn by matplotlib's mathtext,
which has no CJK glyphs (dummy boxes, even with a CJK font installed); the Chinese
entries of :data:`ZH` therefore write their maths in Unicode (``x₁ … xₛ``, ``QKᵀ/√d_k``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import urllib.parse
import urllib.request
import warnings

from .errors import UserFacingError
from .labels_zh import ZH  # the catalogue, re-exported: ift_tutorial.i18n.ZH

#: The environment variable that picks the edition; it wins over everything else.
LANG_ENV = "IFT_LANG"
#: The editions: English (the source) and Chinese.
LANGUAGES: tuple[str, ...] = ("en", "zh")
#: Colab's Jupyter server lists its notebook sessions here (address and port from Colab's
#: own ``COLAB_JUPYTER_IP`` and ``KMP_TARGET_PORT`` when they are set).
COLAB_SESSIONS_URL = "http://{ip}:{port}/api/sessions"
COLAB_DEFAULT_IP, COLAB_DEFAULT_PORT = "172.28.0.12", "9000"

_chosen: str | None = None  # what set_edition() chose
_warned: set[str] = set()  # English labels already reported as missing from ZH


class MissingTranslationWarning(UserWarning):
    """A figure label of the Chinese edition has no entry in :data:`ZH` (drawn in English)."""


def _check(value: str, where: str) -> str:
    """``value`` as an edition (``ZH`` counts as ``zh``), or a clear error naming ``where``."""
    lang = value.strip().lower()
    if lang not in LANGUAGES:
        raise UserFacingError(f"{where} is {value!r}; the editions are {', '.join(LANGUAGES)} "
                              f"(English, Chinese)")
    return lang


def set_edition(lang: str | None) -> None:
    """Choose the edition for the rest of this process; None forgets the choice.

    ``IFT_LANG`` in the environment still wins (see :func:`edition`).

    Raises:
        UserFacingError: ``lang`` is not one of :data:`LANGUAGES`.

    Example:
        >>> from ift_tutorial import edition, set_edition
        >>> set_edition("zh")
        >>> edition()  # unless IFT_LANG is set
        'zh'
        >>> set_edition(None)  # back to finding it out
    """
    global _chosen
    _chosen = None if lang is None else _check(lang, "the edition")


def _has_zh_folder(path: str, is_file: bool) -> bool:
    """True when one of the folders of ``path`` (``/`` or ``\\`` separated) is ``zh``."""
    parts = [p for p in re.split(r"[\\/]", path) if p]
    return "zh" in (parts[:-1] if is_file else parts)


def _jupyter_session_path() -> str | None:
    """The notebook's path as the Jupyter server passes it to the kernel."""
    return os.environ.get("JPY_SESSION_NAME") or None


def _ipython_session_path() -> str | None:
    """``__session__`` in the user namespace (JupyterLab, VS Code); no IPython, no path."""
    if "IPython" not in sys.modules:  # never imported: no shell is running
        return None
    from IPython import get_ipython

    shell = get_ipython()
    session = shell.user_ns.get("__session__") if shell is not None else None
    return session if isinstance(session, str) and session else None


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file name (``kernel-<id>.json``)."""
    if "ipykernel" not in sys.modules:
        return None
    from ipykernel.connect import get_connection_file

    name = os.path.basename(get_connection_file())
    return name[len("kernel-"):-len(".json")] if name.startswith("kernel-") else None


@functools.cache
def _colab_session_paths() -> tuple[str, ...]:
    """The notebook paths of Colab's session list (this kernel's session when it is listed),
    URL-decoded: a notebook opened from GitHub has its GitHub path in there. Asked once."""
    url = COLAB_SESSIONS_URL.format(ip=os.environ.get("COLAB_JUPYTER_IP") or COLAB_DEFAULT_IP,
                                    port=os.environ.get("KMP_TARGET_PORT") or COLAB_DEFAULT_PORT)
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (a fixed local URL)
            sessions = [s for s in json.load(response) if isinstance(s, dict)]
    except Exception:  # noqa: BLE001 (no server, a timeout, not JSON): cached as no path
        return ()
    try:
        kernel = _kernel_id()
    except Exception:  # noqa: BLE001 (no connection file: every session counts)
        kernel = None
    own = [s for s in sessions if kernel and (s.get("kernel") or {}).get("id") == kernel]
    return tuple(urllib.parse.unquote(str(s.get("path") or "")) for s in own or sessions)


def _notebook_paths() -> list[str]:
    """Every path of the running notebook that can be found; a source that fails is skipped."""
    paths = []
    for source in (_jupyter_session_path, _ipython_session_path):
        try:
            path = source()
        except Exception:  # noqa: BLE001 (a hint, never a reason to fail a chapter)
            path = None
        if path:
            paths.append(path)
    if "google.colab" in sys.modules:  # only Colab runs that server
        paths += _colab_session_paths()
    return paths


def edition() -> str:
    """The edition that is running: ``"en"`` or ``"zh"``.

    ``IFT_LANG`` in the environment wins (an empty value counts as unset), then
    :func:`set_edition`'s choice, then a ``zh`` folder in the notebook's path or in the
    working folder; otherwise English. The module docstring has the details.

    Raises:
        UserFacingError: ``IFT_LANG`` is set to something other than ``en`` or ``zh``.

    Example:
        >>> from ift_tutorial import edition
        >>> edition() in ("en", "zh")
        True
    """
    env = os.environ.get(LANG_ENV, "").strip()
    if env:
        return _check(env, f"{LANG_ENV} (in the environment)")
    if _chosen is not None:
        return _chosen
    if any(_has_zh_folder(p, is_file=True) for p in _notebook_paths()):
        return "zh"
    try:
        cwd = os.getcwd()
    except OSError:  # the working folder was deleted
        return "en"
    return "zh" if _has_zh_folder(cwd, is_file=False) else "en"


def t(text: str, /, **fields: object) -> str:
    """The figure label ``text`` (English) in the running edition, formatted with ``fields``.

    In English it is ``text.format(**fields)`` (``text`` itself without fields). In
    Chinese it is :data:`ZH`'s entry for ``text``, formatted the same way; a label missing
    there is drawn in English, with one :class:`MissingTranslationWarning` per label
    (``tests/test_i18n.py`` checks that every literal label of the package and of the
    chapters has an entry).

    Example:
        >>> from ift_tutorial import set_edition, t
        >>> set_edition("en")  # IFT_LANG, if set, would win
        >>> t("training loss")
        'training loss'
        >>> set_edition("zh")
        >>> t("training loss"), t("last layer, head {h}", h=3)
        ('训练损失', '最后一层，第 3 个头')
        >>> set_edition(None)
    """
    if edition() == "zh":
        translated = ZH.get(text)
        if translated is None:
            if text not in _warned:
                _warned.add(text)
                warnings.warn(MissingTranslationWarning(
                    f"no Chinese label for {text!r} in ift_tutorial.i18n.ZH: drawn in English"),
                    stacklevel=2)
        else:
            text = translated
    return text.format(**fields) if fields else text
