"""Numbers printed for people: percentages, counts with units, durations."""

from __future__ import annotations

import doctest
import math

import pytest

from ift_tutorial import formatting
from ift_tutorial.formatting import count, number, percent, seconds


@pytest.mark.parametrize("value, digits, text", [
    (0.7555, 0, "76 %"), (0.7555, 1, "75.5 %"), (0.0, 0, "0 %"), (1.0, 0, "100 %"),
    (0.004, 0, "0 %"), (0.005001, 1, "0.5 %"), (None, 0, "n/a"), (math.nan, 0, "n/a"),
])
def test_percent(value, digits, text):
    assert percent(value, digits) == text


@pytest.mark.parametrize("value, text", [
    (0, "0"), (7, "7"), (999, "999"), (1000, "1 k"), (1499, "1.5 k"), (12_345, "12 k"),
    (999_960, "1 M"), (1_200_000, "1.2 M"), (2_162_688, "2.2 M"), (7_615_616_512, "7.6 B"),
    (-1_200_000, "-1.2 M"), (2.5, "2.5"), (None, "n/a"),
])
def test_count(value, text):
    assert count(value) == text


@pytest.mark.parametrize("value, text", [
    (0.351, "0.35 s"), (4.24, "4.2 s"), (9.99, "10 s"), (89.4, "89 s"), (99.4, "99 s"),
    (100, "1 min 40 s"), (125, "2 min 5 s"), (132, "2 min 12 s"), (3599.6, "1 h 0 min"),
    (3725, "1 h 2 min"), (None, "n/a"),
])
def test_seconds(value, text):
    assert seconds(value) == text


@pytest.mark.parametrize("value, text", [
    (12.3456, "12.3"), (0.012345, "0.0123"), (99.99, "100"), (1234.5, "1234"), (0, "0"),
    (-2.718, "-2.72"), (None, "n/a"),
])
def test_number(value, text):
    assert number(value) == text


def test_docstring_examples_hold():
    result = doctest.testmod(formatting)
    assert result.attempted >= 4 and result.failed == 0
