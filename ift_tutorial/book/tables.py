"""Tables for the book's pages: one look in every chapter, headers in the edition's language.

A chapter hands :func:`table` its rows (dicts, or a DataFrame) and says, per column, how
its numbers read (:data:`STYLES`)::

    table([{"metric": "exact match", "score": 0.756}, ...],
          columns={"metric": "metric", "score": "after tuning"},
          styles={"metric": "label", "score": "percent"})

and gets a :class:`Table`: shown by Jupyter as HTML without the pandas index, headers and
labels translated by :func:`ift_tutorial.i18n.t`, one number style per column, and a
missing value (``None``, NaN) written as "not measured at this scale" instead of ``NaN``.
Long text wraps inside its cell, so that a table is never wider than the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import formatting
from ..i18n import ZH, t

#: What a missing value says (translated by the edition).
NOT_MEASURED = "not measured at this scale"


def label(text: str) -> str:
    """``text`` in the edition's words when :data:`~ift_tutorial.i18n.ZH` has it, else as it is.

    Headers and row labels are often names (a preset, ``max_length``) that read the same in
    both editions; a label with no Chinese entry is shown as written, without a warning.
    """
    return t(text) if text in ZH else text


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _pair(value: Any) -> tuple[Any, ...]:
    """A tuple, list or dict cell as a tuple: ``(value, low, high)`` or ``(before, after)``."""
    if isinstance(value, Mapping):
        keys = ("value", "low", "high") if "value" in value else ("before", "after")
        return tuple(value.get(k) for k in keys)
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _percent_interval(value: Any) -> str:
    v, low, high = (_pair(value) + (None, None))[:3]
    return formatting.percent_interval(v, low, high)


def _perplexity(value: Any) -> str:
    parts = _pair(value)
    if len(parts) == 1:
        return formatting.large(parts[0])
    before, after = parts[:2]
    if _is_missing(before) and _is_missing(after):
        return t(NOT_MEASURED)
    return formatting.before_after(before, after)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, float):
        return formatting.number(value)
    return str(value)


#: The number styles a column can have: name -> how a cell is written.
STYLES: dict[str, Callable[[Any], str]] = {
    "percent": formatting.percent,  # 0.756 -> "76 %"
    "percent_interval": _percent_interval,  # (0.756, 0.68, 0.83) -> "76 % (68–83 %)"
    "count": formatting.count,  # 2_162_688 -> "2.2 M"
    "perplexity": _perplexity,  # (1_032_067, 1.59) -> "1.0 M → 1.59"; 41.27 -> "41.3"
    "seconds": formatting.seconds,  # 132 -> "2 min 12 s"
    "bytes": formatting.size,  # 3_500_000 -> "3.3 MiB"
    "number": formatting.number,  # 12.3456 -> "12.3"
    "label": lambda v: label(str(v)),  # an English label, translated by the edition
    "plain": _plain,  # as it is (True -> ✓)
}

#: The CSS that keeps a table within the page: cells wrap, nothing scrolls off.
TABLE_CSS = [
    {"selector": "", "props": [("max-width", "100%"), ("border-collapse", "collapse"),
                              ("font-size", "0.9em")]},
    {"selector": "th", "props": [("text-align", "left"), ("white-space", "normal")]},
    {"selector": "td", "props": [("white-space", "normal"), ("overflow-wrap", "anywhere"),
                                 ("max-width", "32em"), ("vertical-align", "top")]},
]


def format_cell(value: Any, style: str = "plain", missing: str = NOT_MEASURED) -> str:
    """One cell in a column's ``style`` (:data:`STYLES`); a missing value says ``missing``.

    Example:
        >>> format_cell(0.756, "percent"), format_cell((1_032_067, 1.59), "perplexity")
        ('76 %', '1.0 M → 1.59')
        >>> format_cell(None, "percent")
        'not measured at this scale'
    """
    if style not in STYLES:
        raise ValueError(f"unknown table style {style!r}; the styles are {', '.join(STYLES)}")
    if _is_missing(value):
        return t(missing)
    return STYLES[style](value)


class Table:
    """A formatted table: ``frame`` holds its text cells under translated headers.

    Jupyter shows it as HTML without the index (``_repr_html_``); ``repr`` gives the same
    cells as plain text, for a terminal or a test.
    """

    def __init__(self, frame, caption: str | None = None):
        self.frame = frame  # a pandas DataFrame of strings, index 0..n-1 (never shown)
        self.caption = caption

    @property
    def styler(self):
        """The pandas Styler that draws the HTML (index hidden, cells wrapping)."""
        styler = self.frame.style.hide(axis="index").set_table_styles(TABLE_CSS)
        return styler.set_caption(html.escape(self.caption)) if self.caption else styler

    def to_html(self) -> str:
        """The table as an HTML fragment."""
        return self.styler.to_html()

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        text = self.frame.to_string(index=False)
        return f"{self.caption}\n{text}" if self.caption else text

    def column(self, header: str) -> list[str]:
        """The cells of one column, by its English header (translated as shown)."""
        return list(self.frame[label(header)])


def table(rows: Sequence[Mapping[str, Any]] | Any,
          columns: Sequence[str] | Mapping[str, str] | None = None,
          styles: Mapping[str, str] | str | None = None, caption: str | None = None,
          missing: str = NOT_MEASURED) -> Table:
    """A table for a book page: ``rows`` (dicts or a DataFrame) as a :class:`Table`.

    Args:
        rows: one mapping per row (key -> value), or a DataFrame (its index is dropped:
            make it a column first with ``reset_index()`` if it holds labels).
        columns: the keys to show, in order; a mapping gives each key its English header
            (``{"score": "after tuning"}``); by default every key of the first row, as its
            own header. Headers are translated by the edition where
            :data:`~ift_tutorial.i18n.ZH` has them (:func:`label`); names stay as they are.
        styles: per key, the name of its number style (:data:`STYLES`); one name for every
            column; a key without one is ``"plain"``.
        caption: a line above the table (translated).
        missing: what a missing value (None, NaN) says, translated.

    Example:
        >>> tab = table([{"metric": "exact match", "score": 0.756},
        ...              {"metric": "GSM8K strict", "score": None}],
        ...             columns={"metric": "metric", "score": "after"},
        ...             styles={"metric": "label", "score": "percent"})
        >>> print(repr(tab))  # doctest: +NORMALIZE_WHITESPACE
              metric                      after
         exact match                       76 %
        GSM8K strict not measured at this scale
    """
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict(orient="records")
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    headers = dict(columns) if isinstance(columns, Mapping) else {k: k for k in columns}
    if isinstance(styles, str):
        styles = dict.fromkeys(headers, styles)
    styles = styles or {}
    unknown = [k for k in styles if k not in headers]
    if unknown:
        raise ValueError(f"styles for columns that are not shown: {', '.join(unknown)}")
    cells = {label(header): [format_cell(row.get(key), styles.get(key, "plain"), missing)
                             for row in rows] for key, header in headers.items()}
    return Table(pd.DataFrame(cells), caption=label(caption) if caption else None)


def key_value_table(pairs: Mapping[str, Any], styles: Mapping[str, str] | None = None,
                    headers: tuple[str, str] = ("setting", "value"),
                    caption: str | None = None) -> Table:
    """A two-column table of labelled values (labels translated): a config, a run's summary.

    Args:
        pairs: English label -> value.
        styles: per label, a number style (:data:`STYLES`); others are ``"plain"``.
        headers: the two column headers (English, translated).

    Example:
        >>> print(repr(key_value_table({"steps": 400, "training": 132.0},
        ...                            styles={"training": "seconds"})))
         setting      value
           steps        400
        training 2 min 12 s
    """
    styles = styles or {}
    rows = [{"key": label(name), "value": format_cell(value, styles.get(name, "plain"))}
            for name, value in pairs.items()]
    return table(rows, columns={"key": headers[0], "value": headers[1]}, caption=caption)
