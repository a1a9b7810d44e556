"""Numbers with their uncertainty: intervals for accuracies, paired tests for before/after.

An accuracy measured on n items is an estimate; on the small subsets of an evaluation
(16 IFEval prompts, 32 GSM8K problems) it is a rough one. Three tools, pure Python:

* :func:`wilson_interval`: the 95 % Wilson score interval of a proportion k/n (Wilson
  1927). Unlike the textbook ``p ± 1.96·sqrt(p(1-p)/n)`` it stays inside [0, 1] and does
  not shrink to a point at 0/n or n/n;
* :func:`mcnemar_test`: McNemar's exact test for paired 0/1 outcomes. Before and after
  tuning answer the *same* items, so only the items that changed carry evidence:
  ``b`` improved (0 -> 1), ``c`` worsened (1 -> 0). Under "no change" each of them is a
  fair coin, and the p-value is the two-sided binomial tail of min(b, c) in b + c tosses;
* :func:`bootstrap_interval` and :func:`paired_bootstrap`: seeded resampling, for scores
  whose items are not independent 0/1 outcomes. IFEval's *instruction-level* accuracy
  counts instructions, but instructions come in prompts; resampling whole prompts (a
  cluster bootstrap) keeps that structure.

Suites report per-item outcomes (``report["outcomes"][key]``: 0 or 1 per item, in the
suite's fixed item order; ``report["outcome_groups"][key]``: the prompt of each item
where items come in groups). :func:`intervals` and :func:`paired_tests` turn them into the
``<key>_<when>_interval`` and ``<key>_paired`` entries of ``metrics.json``.
"""

from __future__ import annotations

import math
import statistics as _stats
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Resamples of the bootstraps: the 2.5 % and 97.5 % quantiles move by ~0.5 points between
#: seeds at 2000 (a fraction of the interval's width on these set sizes).
N_RESAMPLES = 2000


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of the proportion ``successes / n``.

    Example:
        >>> [round(x, 4) for x in wilson_interval(8, 10)]
        [0.4902, 0.9433]
        >>> wilson_interval(0, 0)
        (0.0, 1.0)
    """
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes}: expected 0..n (n = {n})")
    if n == 0:
        return 0.0, 1.0  # nothing measured: every proportion is possible
    z = _stats.NormalDist().inv_cdf(0.5 + confidence / 2)
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # rounding aside, the bounds at 0/n and n/n are exactly 0 and 1
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def binomial_two_sided(k: int, n: int) -> float:
    """Two-sided exact p-value of ``k`` heads in ``n`` fair tosses: twice the smaller tail.

    Example:
        >>> binomial_two_sided(1, 3), binomial_two_sided(0, 10)
        (1.0, 0.001953125)
    """
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar_test(before: Sequence[int], after: Sequence[int]) -> dict[str, Any]:
    """McNemar's exact test of paired 0/1 outcomes on the same items.

    Returns:
        ``test`` ("McNemar"), ``n`` (items), ``improved`` (b: 0 before, 1 after),
        ``worsened`` (c: 1 before, 0 after), ``difference`` (after minus before accuracy,
        a fraction) and ``p_value`` (:func:`binomial_two_sided` of b in b + c).

    Example:
        >>> r = mcnemar_test([0, 0, 1, 1], [1, 1, 0, 1])
        >>> r["improved"], r["worsened"], r["p_value"]
        (2, 1, 1.0)
    """
    _same_items(before, after)
    b = sum(1 for x, y in zip(before, after) if not x and y)
    c = sum(1 for x, y in zip(before, after) if x and not y)
    n = len(before)
    return {"test": "McNemar", "n": n, "improved": b, "worsened": c,
            "difference": (b - c) / n if n else 0.0, "p_value": binomial_two_sided(b, b + c)}


def _same_items(before: Sequence[Any], after: Sequence[Any]) -> None:
    if len(before) != len(after):
        raise ValueError(f"paired outcomes of different lengths: {len(before)} before, "
                         f"{len(after)} after (the same items must be measured both times)")


def _cluster_sums(outcomes: Sequence[int], groups: Sequence[int] | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: the sum of outcomes and the number of items, (G,) each."""
    values = np.asarray(outcomes, dtype=float)
    if groups is None:
        return values, np.ones_like(values)
    if len(groups) != len(values):
        raise ValueError(f"{len(groups)} groups for {len(values)} outcomes")
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    return np.bincount(index, weights=values), np.bincount(index).astype(float)


def bootstrap_interval(outcomes: Sequence[float], groups: Sequence[int] | None = None,
                       confidence: float = 0.95, n_resamples: int = N_RESAMPLES,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean; with ``groups``, whole groups are resampled.

    Example:
        >>> low, high = bootstrap_interval([1, 1, 0, 1, 0, 1, 1, 1, 0, 1])
        >>> 0.3 < low < 0.7 < high <= 1.0
        True
    """
    sums, sizes = _cluster_sums(outcomes, groups)
    if len(sums) == 0:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(sums), size=(n_resamples, len(sums)))  # (R, G)
    means = sums[picks].sum(1) / sizes[picks].sum(1)
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired_bootstrap(before: Sequence[float], after: Sequence[float],
                     groups: Sequence[int] | None = None, confidence: float = 0.95,
                     n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """The difference after minus before, its paired bootstrap interval and a p-value.

    The same resampled items (or groups) serve both sides, so what varies is the change on
    each item, not the items themselves. The p-value is that of a sign-flip permutation
    test on the per-group changes (before and after swapped at random within each group;
    exact enumeration up to 2^16 groups' patterns, else ``n_resamples`` seeded draws).

    Returns:
        ``test`` ("paired bootstrap"), ``n`` (items), ``groups``, ``difference``,
        ``low``, ``high`` and ``p_value``.
    """
    _same_items(before, after)
    b_sums, sizes = _cluster_sums(before, groups)
    a_sums, _ = _cluster_sums(after, groups)
    diff = a_sums - b_sums  # (G,): the change of each group, in items
    total = sizes.sum()
    observed = float(diff.sum() / total) if total else 0.0
    if len(diff) == 0:
        return {"test": "paired bootstrap", "n": 0, "groups": 0, "difference": 0.0,
                "low": 0.0, "high": 0.0, "p_value": 1.0}
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(diff), size=(n_resamples, len(diff)))
    resampled = diff[picks].sum(1) / sizes[picks].sum(1)
    tail = (1 - confidence) / 2
    moved = diff[diff != 0]
    if len(moved) <= 16:  # every sign pattern: an exact test
        signs = 1 - 2 * ((np.arange(2 ** len(moved))[:, None] >> np.arange(len(moved))) & 1)
    else:
        signs = rng.choice([-1, 1], size=(n_resamples, len(moved)))
    flipped = np.abs((signs * moved).sum(1))
    p = float(np.mean(flipped >= abs(diff.sum()) - 1e-9)) if len(moved) else 1.0
    return {"test": "paired bootstrap", "n": int(total), "groups": len(diff),
            "difference": observed, "low": float(np.quantile(resampled, tail)),
            "high": float(np.quantile(resampled, 1 - tail)), "p_value": p}


# --- reports: outcomes -> metrics.json entries -------------------------------------------


def interval(outcomes: Sequence[int], groups: Sequence[int] | None = None) -> list[float]:
    """``[low, high]`` of an accuracy: Wilson for independent items, else a cluster bootstrap."""
    if groups is None:
        return list(wilson_interval(int(sum(outcomes)), len(outcomes)))
    return list(bootstrap_interval(outcomes, groups))


def intervals(report: Mapping[str, Any], when: str) -> dict[str, list[float]]:
    """``{"<key>_<when>_interval": [low, high]}`` for each accuracy with outcomes in ``report``.

    Example:
        >>> got = intervals({"outcomes": {"exact_match": [1] * 8 + [0] * 2}}, "after")
        >>> [round(x, 3) for x in got["exact_match_after_interval"]]
        [0.49, 0.943]
    """
    groups = report.get("outcome_groups") or {}
    return {f"{key}_{when}_interval": interval(values, groups.get(key))
            for key, values in (report.get("outcomes") or {}).items() if values}


def paired_test(before: Sequence[int], after: Sequence[int],
                groups: Sequence[int] | None = None) -> dict[str, Any]:
    """McNemar for independent 0/1 items; a paired (cluster) bootstrap for grouped ones."""
    return mcnemar_test(before, after) if groups is None else paired_bootstrap(before, after, groups)


def paired_tests(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"<key>_paired": test}`` for each accuracy with outcomes in both reports.

    A key whose outcomes differ in length (not the same items) gets no test: nothing pairs.
    """
    out = {}
    b_out, a_out = before.get("outcomes") or {}, after.get("outcomes") or {}
    groups = after.get("outcome_groups") or {}
    for key in sorted(set(b_out) & set(a_out)):
        if b_out[key] and len(b_out[key]) == len(a_out[key]):
            out[f"{key}_paired"] = paired_test(b_out[key], a_out[key], groups.get(key))
    return out


def summary(before: Mapping[str, Any], after: Mapping[str, Any],
            keys: Sequence[str]) -> dict[str, Any]:
    """``<key>_before``, ``<key>_after``, their intervals and the paired tests of two reports:
    what ``metrics.json`` holds of an evaluation before and after tuning."""
    out: dict[str, Any] = {}
    for when, report in (("before", before), ("after", after)):
        out |= {f"{key}_{when}": report.get(key) for key in keys}
        out |= intervals(report, when)
    return out | paired_tests(before, after)


def format_p(p: float) -> str:
    """A p-value for people: two significant digits, "< 0.001" below that.

    Example:
        >>> format_p(0.0001), format_p(0.0421), format_p(1.0)
        ('p < 0.001', 'p = 0.042', 'p = 1')
    """
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


def format_paired(test: Mapping[str, Any] | None) -> str | None:
    """A paired test as a table cell: the change in points and its p-value ("+12 points,
    p = 0.003"); None when there is no test. Translated by the edition."""
    if not test:
        return None
    from ..i18n import t

    points = 100 * test["difference"]
    change = "±0" if round(points) == 0 else f"{points:+.0f}"
    return t("{change} points, {p}", change=change, p=format_p(test["p_value"]))
