"""Numbers as a reader should see them: ``76 %``, ``1.2 M``, ``2 min 12 s``.

Printed summaries (the training run's before/after lines, the chapters' tables) go
through these helpers, so that a page never shows ``0.7555555555`` or ``2160288``.
A missing value (``None``) prints as ``n/a`` rather than failing: an evaluation that
was skipped is reported, not hidden.
"""

from __future__ import annotations

import math

#: What a missing value prints as.
MISSING = "n/a"

_COUNT_UNITS = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))


def _trim(text: str) -> str:
    """``"1.0"`` -> ``"1"``, ``"1.50"`` -> ``"1.5"``; integers stay as they are."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def percent(fraction: float | None, digits: int = 0) -> str:
    """A fraction as a percentage, with a space before the sign.

    Example:
        >>> percent(0.7555), percent(0.7555, digits=1), percent(1.0), percent(None)
        ('76 %', '75.5 %', '100 %', 'n/a')
    """
    if _missing(fraction):
        return MISSING
    return f"{100 * fraction:.{digits}f} %"


def count(n: float | None, digits: int = 1) -> str:
    """A count with a unit prefix: thousands ``k``, millions ``M``, billions ``B``.

    Below 1000 the number is printed whole; from 10 units up without decimals
    (``12 M``), below with ``digits`` decimals (``1.2 M``), trailing zeros dropped.

    Example:
        >>> count(950), count(1_200_000), count(2_162_688), count(12_345_678), count(7.6e9)
        ('950', '1.2 M', '2.2 M', '12 M', '7.6 B')
    """
    if _missing(n):
        return MISSING
    sign, n = ("-" if n < 0 else ""), abs(n)
    for scale, unit in _COUNT_UNITS if n >= 1000 else ():
        # round first, so that 999_960 prints as "1 M", not "1000 k"
        if round(n / scale, digits) >= 1:
            value = n / scale
            text = f"{value:.0f}" if round(value, digits) >= 10 else _trim(f"{value:.{digits}f}")
            return f"{sign}{text} {unit}"
    return f"{sign}{n:.0f}" if float(n).is_integer() else f"{sign}{_trim(f'{n:.{digits}f}')}"


def count_in_words(n: float) -> str:
    """A large count for a sentence, in the running edition's words.

    English says millions and billions; Chinese counts in 万 (10⁴) and 亿 (10⁸).

    Example:
        >>> from ift_tutorial.i18n import set_edition
        >>> count_in_words(7.6e9), count_in_words(2.08e6)
        ('7.6 billion', '2.1 million')
        >>> set_edition("zh")
        >>> count_in_words(7.6e9), count_in_words(2.08e6)
        ('76 亿', '208 万')
        >>> set_edition(None)
    """
    from .i18n import edition

    if edition() == "zh":
        return f"{n / 1e8:.0f} 亿" if n >= 1e8 else f"{n / 1e4:.0f} 万"
    return f"{_trim(f'{n / 1e9:.1f}')} billion" if n >= 1e9 else f"{_trim(f'{n / 1e6:.1f}')} million"


def seconds(s: float | None) -> str:
    """A duration: ``0.35 s``, ``4.2 s``, ``89 s``, ``2 min 12 s``, ``1 h 2 min``.

    Example:
        >>> seconds(0.351), seconds(4.24), seconds(89.4), seconds(132), seconds(3725)
        ('0.35 s', '4.2 s', '89 s', '2 min 12 s', '1 h 2 min')
    """
    if _missing(s):
        return MISSING
    if round(s, 2) < 1:
        return f"{s:.2f} s"
    if round(s, 1) < 10:
        return f"{s:.1f} s"
    total = round(s)
    if total < 100:  # "89 s" reads better than "1 min 29 s"
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def number(x: float | None, significant: int = 3) -> str:
    """A measured value to ``significant`` digits (whole numbers stay whole). Below 0.01
    two digits are enough and below 0.001 an exponent reads better than a row of zeros.

    Example:
        >>> number(12.3456), number(0.012345), number(0.0049), number(0.000123), number(None)
        ('12.3', '0.0123', '0.0049', '1.2e-04', 'n/a')
    """
    if _missing(x):
        return MISSING
    if x == 0:
        return "0"
    if abs(x) < 0.001:
        return f"{x:.1e}"
    if abs(x) < 0.01:
        significant = min(significant, 2)
    if abs(x) >= 10 ** (significant - 1):
        return f"{x:.0f}"  # the integer part is never cut: 1234.5 -> 1234
    x = float(f"{x:.{significant}g}")  # round first: 99.99 -> 100, not "100.0"
    decimals = max(0, significant - 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def large(x: float | None) -> str:
    """A value that may be huge (a base model's perplexity): 3 digits, then ``k``/``M``/``B``
    with one decimal kept, so that ``1.0 M`` still reads as a measurement.

    Example:
        >>> large(1.5934), large(41.27), large(1_032_067.4), large(23_456), large(None)
        ('1.59', '41.3', '1.0 M', '23 k', 'n/a')
    """
    if _missing(x):
        return MISSING
    if abs(x) < 1000:
        return number(x)
    for scale, unit in _COUNT_UNITS:
        if abs(x) >= scale:
            value = x / scale
            return f"{value:.1f} {unit}" if abs(value) < 10 else f"{value:.0f} {unit}"
    return number(x)  # not reached: 1000 and up have a unit


def before_after(before: float | None, after: float | None) -> str:
    """Two measurements of the same thing, before and after: ``1.0 M → 1.59``.

    A perplexity that falls a millionfold is not a "change" of −1,032,064; the two values
    say it. Each side uses :func:`large`; a missing side prints as ``n/a``.

    Example:
        >>> before_after(1_032_067.4, 1.5934), before_after(41.3, None)
        ('1.0 M → 1.59', '41.3 → n/a')
    """
    return f"{large(before)} → {large(after)}"


def percent_interval(fraction: float | None, low: float | None, high: float | None,
                     digits: int = 0) -> str:
    """A percentage with its interval: ``76 % (68–83 %)``; without the interval, as :func:`percent`.

    Example:
        >>> percent_interval(0.756, 0.68, 0.83), percent_interval(0.5, None, None)
        ('76 % (68–83 %)', '50 %')
    """
    if _missing(fraction) or _missing(low) or _missing(high):
        return percent(fraction, digits)
    return (f"{percent(fraction, digits)} ({100 * low:.{digits}f}–"
            f"{100 * high:.{digits}f} %)")


_BYTE_UNITS = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def size(n_bytes: float | None) -> str:
    """A size in bytes with a binary unit: ``512 B``, ``1.5 KiB``, ``14 GiB``.

    Example:
        >>> size(512), size(1536), size(3_500_000), size(15 * 2**30), size(None)
        ('512 B', '1.5 KiB', '3.3 MiB', '15 GiB', 'n/a')
    """
    if _missing(n_bytes):
        return MISSING
    for scale, unit in _BYTE_UNITS:
        if n_bytes >= scale:
            value = n_bytes / scale
            return f"{_trim(f'{value:.1f}')} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n_bytes:.0f} B"
