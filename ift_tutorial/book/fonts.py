"""Fonts for the book's figures: Chinese text drawn with real glyphs, not tofu boxes.

Matplotlib's default font (DejaVu Sans) has no Chinese characters. Matplotlib falls
back from one font to the next only along ``font.family``, glyph by glyph, so
:func:`use_cjk_fallback` sets ``font.family`` to ``["sans-serif", <CJK font>]``: Latin
text keeps the default look, and each Chinese character comes from the CJK font.

The CJK font is looked up by name (:data:`CJK_FAMILIES`: Noto Sans CJK from Debian's
``fonts-noto-cjk``, as in CI and on Colab after ``apt-get install fonts-noto-cjk``; the
system fonts of macOS and Windows). A font installed after matplotlib built its font
cache is found too, by scanning the system's font files once, and so are the fonts that
a pip package ships (:data:`FONT_PACKAGES`: ``pip install mplfonts``, for a machine
without admin rights).

Without any CJK font, a figure with Chinese text is still drawn, and
:func:`savefig_checked` replaces matplotlib's warning per missing character by one
:class:`MissingCJKFontWarning` that says what to install.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import font_manager

#: CJK font families, best first: Debian/Colab (Noto, Source Han, WenQuanYi), macOS, Windows.
CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
    "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "PingFang SC",
    "Hiragino Sans GB", "Heiti SC", "Microsoft YaHei", "SimHei", "Droid Sans Fallback",
)
#: File names of CJK fonts, for fonts that matplotlib's cache does not know yet.
CJK_FONT_FILES = re.compile(
    r"(Noto(Sans|Serif)(Mono)?CJK|NotoSansSC|SourceHan(Sans|Serif)|wqy|DroidSansFallback)", re.I)
#: pip packages that ship CJK font files in their ``fonts/`` folder (``pip install mplfonts``
#: brings Noto Sans CJK SC); they are used in place, nothing is copied or configured.
FONT_PACKAGES: tuple[str, ...] = ("mplfonts",)
#: How to get a CJK font, in the warning.
INSTALL_HINT = (
    "install a CJK font, e.g. `apt-get install fonts-noto-cjk` (Debian, Ubuntu, Colab), or "
    "`pip install mplfonts`, or put Noto Sans CJK SC (https://github.com/notofonts/noto-cjk) "
    "in ~/.local/share/fonts; then restart the kernel"
)
# The characters of matplotlib's "Glyph N (\N{CJK UNIFIED IDEOGRAPH-4E2D}) missing" warnings.
_MISSING_CJK_GLYPH = re.compile(
    r"Glyph (\d+) \(\\N\{(CJK|IDEOGRAPHIC|FULLWIDTH|HALFWIDTH|HIRAGANA|KATAKANA|HANGUL|BOPOMOFO)")

_system_fonts_scanned = False
_warned = False


class MissingCJKFontWarning(UserWarning):
    """A figure has CJK text and no installed font can draw it."""


def _known_families() -> set[str]:
    return {f.name for f in font_manager.fontManager.ttflist}


def _package_font_files() -> list[str]:
    """Font files inside the installed :data:`FONT_PACKAGES` (found without importing them)."""
    files = []
    for name in FONT_PACKAGES:
        spec = importlib.util.find_spec(name)  # a top-level name: nothing is imported
        folders = (spec.submodule_search_locations or []) if spec else []
        for folder in folders:
            files += [str(p) for p in sorted(Path(folder, "fonts").glob("*"))
                      if p.suffix.lower() in {".otf", ".ttf", ".ttc"}]
    return files


def _add_system_cjk_fonts() -> None:
    """Register CJK font files that matplotlib's font cache predates: the system's
    (installed after the cache was built) and those of :data:`FONT_PACKAGES`."""
    global _system_fonts_scanned
    if _system_fonts_scanned:
        return
    _system_fonts_scanned = True
    known = {f.fname for f in font_manager.fontManager.ttflist}
    for path in [*font_manager.findSystemFonts(), *_package_font_files()]:
        if path not in known and CJK_FONT_FILES.search(Path(path).name):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):  # an unreadable font file: skip it
                continue


def find_cjk_font(families: tuple[str, ...] | None = None) -> str | None:
    """The first of ``families`` (default :data:`CJK_FAMILIES`) that matplotlib can use.

    Example:
        >>> find_cjk_font()  # with Debian's fonts-noto-cjk  # doctest: +SKIP
        'Noto Sans CJK SC'
    """
    families = CJK_FAMILIES if families is None else families
    known = _known_families()
    found = next((f for f in families if f in known), None)
    if found is None and families:
        _add_system_cjk_fonts()
        known = _known_families()
        found = next((f for f in families if f in known), None)
    return found


def use_cjk_fallback(rc: Any = None, families: tuple[str, ...] | None = None) -> str | None:
    """Make ``rc`` (default ``matplotlib.rcParams``) draw CJK text with a CJK font.

    ``font.family`` becomes ``[<first family>, <CJK font>]`` (matplotlib falls back along
    it per glyph), and the CJK font is appended to ``font.sans-serif`` after the default.

    Returns:
        The CJK font used, or None when none is installed (nothing is changed then).
    """
    rc = matplotlib.rcParams if rc is None else rc
    font = find_cjk_font(families)
    if font is None:
        return None
    primary = [f for f in rc["font.family"] if f not in CJK_FAMILIES][:1] or ["sans-serif"]
    rc["font.family"] = [*primary, font]
    rc["font.sans-serif"] = [f for f in rc["font.sans-serif"] if f != font] + [font]
    return font


def family_with_cjk(generic: str = "monospace") -> list[str]:
    """A ``fontfamily`` for text that sets its own family: ``["monospace", <CJK font>]``."""
    font = find_cjk_font()
    return [generic, font] if font else [generic]


def savefig_checked(fig, target, **kwargs) -> bool:
    """``fig.savefig(target, **kwargs)``; CJK characters without a font give one warning.

    Matplotlib warns once per missing character ("Glyph 25439 ... missing from font(s)
    DejaVu Sans"). Those warnings are replaced by a single
    :class:`MissingCJKFontWarning` per process, which says what to install; every
    other warning passes through unchanged.

    Returns:
        True when CJK characters were missing (drawn as boxes).
    """
    global _warned
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(target, **kwargs)
    missing: dict[str, None] = {}  # the characters, in order (matplotlib warns per draw pass)
    for w in caught:
        m = _MISSING_CJK_GLYPH.match(str(w.message))
        if m:
            missing[chr(int(m.group(1)))] = None
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if missing and not _warned:
        _warned = True
        chars = "".join(missing)
        warnings.warn(MissingCJKFontWarning(
            f"this figure has Chinese (CJK) text but no CJK font was found, so {len(chars)} "
            f"characters ({chars[:10]}{'…' if len(chars) > 10 else ''}) are drawn as boxes: "
            f"{INSTALL_HINT}"), stacklevel=2)
    return bool(missing)
