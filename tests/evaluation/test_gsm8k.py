"""GSM8K answer extraction (flexible and strict), scoring, and the bilingual fixture."""

from __future__ import annotations

import ast
import json
import operator
import re

import pytest

from ift_tutorial.errors import DataError
from ift_tutorial.evaluation.gsm8k import (
    FIXTURE_PATH,
    GSM8KProblem,
    extract_flexible,
    extract_strict,
    gsm8k_prompt,
    read_gsm8k,
    same_number,
    score_gsm8k,
)


@pytest.mark.parametrize("text,flexible,strict", [
    ("She pays 3 * 4 = 12 dollars, so the answer is 12.", "12", None),
    ("Total: $1,250.50.\n#### 1,250.50", "1250.5", "1250.5"),
    ("#### 18\nThen 7 more questions follow.", "7", "18"),  # flexible takes the last number
    ("The temperature is -5 degrees.", "-5", None),
    ("Read pages 3-5.", "5", None),  # a range's dash is no minus sign
    ("Items 1,2,3", "3", None),  # not a thousands separator
    ("答案是１８。", "18", None),  # full-width digits
    ("一共 1,450 本。\n####1450", "1450", "1450"),
    ("x = 3.0, so 3.00", "3", None),
    ("no number here", None, None),
    ("#### forty-two", None, None),
])
def test_extraction(text, flexible, strict):
    assert extract_flexible(text) == flexible
    assert extract_strict(text) == strict


def test_numbers_compare_as_decimals():
    assert same_number("18", "18.00") and same_number("1,200", "1200")
    assert not same_number("18", "17.99") and not same_number(None, "3")


def test_score_reports_flexible_and_strict_by_language():
    problems = [GSM8KProblem("q1", "#### 12", "12", "en"), GSM8KProblem("q2", "#### 7", "7", "en"),
                GSM8KProblem("q3", "#### 30", "30", "zh")]
    responses = ["3 * 4 = 12\n#### 12", "It is 7 apples.", "一共 30 元，还剩 5 元。"]
    report = score_gsm8k(problems, responses)
    assert report["flexible_acc"] == pytest.approx(2 / 3)
    assert report["strict_acc"] == pytest.approx(1 / 3)
    assert report["by_lang"]["en"] == {"flexible_acc": 1.0, "strict_acc": 0.5, "num_problems": 2}
    assert report["by_lang"]["zh"]["flexible_acc"] == 0.0  # the last number is 5
    assert [r["flexible"] for r in report["results"]] == ["12", "7", "5"]
    assert [r["strict"] for r in report["results"]] == ["12", None, None]
    with pytest.raises(ValueError, match="3 problems but 1"):
        score_gsm8k(problems, ["x"])


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def _calc(expr: str) -> float:
    """Evaluate a calculator annotation (+ - * / and brackets only)."""
    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        assert isinstance(node, ast.Constant)
        return node.value
    return ev(ast.parse(expr, mode="eval").body)


def test_fixture_is_bilingual_and_its_arithmetic_is_right():
    problems = read_gsm8k()
    assert len(problems) == 30
    assert {p.lang for p in problems} == {"en", "zh"}
    assert sum(p.lang == "zh" for p in problems) == 15
    for p in problems:
        notes = re.findall(r"<<([^=>]+)=([^>]+)>>", p.answer)
        assert notes, p.question
        for expr, result in notes:  # every <<a*b=c>> annotation computes c
            assert _calc(expr) == pytest.approx(float(result)), (expr, result)
        assert same_number(notes[-1][1], p.target)  # the last step is the answer
        assert p.answer.rstrip().splitlines()[-1] == f"#### {p.target}"
    # The worked solutions score 100% both ways: the extractors read GSM8K's own format.
    report = score_gsm8k(problems, [p.answer for p in problems])
    assert report["flexible_acc"] == report["strict_acc"] == 1.0


def test_bad_fixture_lines_name_file_line_and_field(tmp_path):
    path = tmp_path / "g.jsonl"
    good = {"question": "1+1?", "answer": "1+1=2\n#### 2"}
    for bad, field in [({"question": "1+1?", "answer": "It is 2."}, "answer"),
                       ({"answer": "#### 2"}, "question")]:
        path.write_text(json.dumps(good) + "\n\n" + json.dumps(bad) + "\n")
        with pytest.raises(DataError) as err:
            read_gsm8k(path)
        assert (err.value.line, err.value.field) == (3, field) and "g.jsonl" in str(err.value)


def test_prompt_asks_for_the_strict_format_in_the_problems_language():
    assert gsm8k_prompt(" 2+3? ").startswith("2+3?\n\n") and "#### " in gsm8k_prompt("2+3?")
    assert "最后一行" in gsm8k_prompt("2 加 3 等于几？", lang="zh")
    assert FIXTURE_PATH.is_file()
