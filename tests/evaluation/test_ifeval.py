"""IFEval checkers (every instruction id, English and Chinese), scoring, files, CLI, prompt set."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from helpers import write_jsonl

from ift_tutorial import cli
from ift_tutorial.errors import DataError
from ift_tutorial.evaluation.ifeval.prompts import CONFLICTS, build_prompt_set, instruction_ids
from ift_tutorial.evaluation.ifeval.registry import (
    ENGLISH_ONLY,
    INSTRUCTIONS,
    InstructionError,
    validate_instructions,
)
from ift_tutorial.evaluation.ifeval.scoring import (
    PROMPTS_PATH,
    IFEvalPrompt,
    check_instruction,
    loose_variants,
    read_ifeval_prompts,
    read_ifeval_responses,
    score_ifeval,
)
from ift_tutorial.evaluation.ifeval.text import (
    count_sentences,
    count_words,
    detect_language,
    split_sentences,
)
from ift_tutorial.evaluation.ifeval.wording import COMMAS

# (lang, instruction id, kwargs, response, followed?). Every id has a positive and a
# negative case in English, and in Chinese unless it is in ENGLISH_ONLY.
CASES = [
    ("en", "keywords:existence", {"keywords": ["tea", "Kettle"]},
     "I boiled the kettle and made TEA.", True),
    ("en", "keywords:existence", {"keywords": ["tea", "kettle"]}, "I made coffee.", False),
    ("en", "keywords:existence", {"keywords": ["C++"]}, "I write C++ daily.", True),
    ("zh", "keywords:existence", {"keywords": ["茶壶", "早晨"]}, "早晨我用茶壶泡茶。", True),
    ("zh", "keywords:existence", {"keywords": ["茶壶", "早晨"]}, "晚上我用茶壶泡茶。", False),
    ("en", "keywords:frequency", {"keyword": "tea", "frequency": 3, "relation": "at least"},
     "Tea, tea and more tea.", True),
    ("en", "keywords:frequency", {"keyword": "tea", "frequency": 3, "relation": "at least"},
     "Tea and tea.", False),
    ("en", "keywords:frequency", {"keyword": "tea", "frequency": 2, "relation": "less than"},
     "One tea.", True),
    ("zh", "keywords:frequency", {"keyword": "朋友", "frequency": 3, "relation": "at least"},
     "朋友的朋友也是朋友。", True),
    ("zh", "keywords:frequency", {"keyword": "朋友", "frequency": 2, "relation": "less than"},
     "朋友的朋友也是朋友。", False),
    ("en", "keywords:forbidden_words", {"forbidden_words": ["very"]},
     "Every answer counts.", True),  # whole words only: "every" is not "very"
    ("en", "keywords:forbidden_words", {"forbidden_words": ["very"]}, "It is Very good.", False),
    ("zh", "keywords:forbidden_words", {"forbidden_words": ["非常"]}, "这很好。", True),
    ("zh", "keywords:forbidden_words", {"forbidden_words": ["非常"]}, "这非常好。", False),
    ("en", "keywords:letter_frequency", {"letter": "e", "let_frequency": 3,
                                         "let_relation": "at least"}, "Eee!", True),
    ("en", "keywords:letter_frequency", {"letter": "z", "let_frequency": 2,
                                         "let_relation": "less than"}, "Jazz.", False),
    ("en", "keywords:letter_frequency", {"letter": "#", "let_frequency": 2,
                                         "let_relation": "at least"}, "#tea #cake", True),
    ("en", "language:response_language", {"language": "en"},
     "This is a plain English sentence about a cat who sits by the window.", True),
    ("en", "language:response_language", {"language": "fr"},
     "This is a plain English sentence about a cat who sits by the window.", False),
    ("en", "language:response_language", {"language": "fr"},
     "CECI EST UNE PHRASE EN FRANÇAIS SUR LES CHATS.", True),
    ("zh", "language:response_language", {"language": "zh"},
     "我今天和朋友一起去公园散步，天气很好。", True),  # simplified
    ("zh", "language:response_language", {"language": "zh"},
     "我今天和朋友一起去公園散步，天氣很好。", True),  # traditional
    ("zh", "language:response_language", {"language": "zh"}, "我用Python写代码，很开心。", True),
    ("zh", "language:response_language", {"language": "zh"},
     "Today I went for a walk in the park with a friend.", False),
    ("en", "length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"},
     "Dr. Li has 3.5 cats. They sleep! Do they dream?", True),
    ("en", "length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "One. Two! Three?", False),
    ("zh", "length_constraints:number_sentences", {"num_sentences": 3, "relation": "at least"},
     "我很好。你呢？他走了！", True),
    ("zh", "length_constraints:number_sentences", {"num_sentences": 2, "relation": "at least"},
     "我很好，你呢，他也很好", False),
    ("en", "length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "Para one.\n***\nPara two.", True),
    ("en", "length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "Para one.\n***\n***\nPara two.", False),  # an empty paragraph in the middle
    ("zh", "length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "第一段。\n***\n第二段。", True),
    ("zh", "length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "第一段。第二段。", False),
    ("en", "length_constraints:number_words", {"num_words": 5, "relation": "at least"},
     "one two three four five", True),
    ("en", "length_constraints:number_words", {"num_words": 5, "relation": "at least"},
     "one two three four", False),
    ("zh", "length_constraints:number_words", {"num_words": 4, "relation": "at least"},
     "我爱喝茶。", True),  # four Han characters are four words
    ("zh", "length_constraints:number_words", {"num_words": 4, "relation": "less than"},
     "我爱喝茶。", False),
    ("en", "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "finally"},
     "Start here.\n\n\"Finally, done.\"", True),
    ("en", "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "finally"},
     "Start here.\n\nAt last, done.", False),
    ("en", "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "finally"},
     "Start.\n\nFinally done.\n\nOne more.", False),  # three paragraphs
    ("zh", "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "首先"},
     "“首先，我们烧水。”\n\n然后泡茶。", True),
    ("zh", "length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "首先"},
     "我们先烧水。\n\n首先泡茶。", False),
    ("en", "detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name], see you at [address].", True),
    ("en", "detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name].", False),
    ("zh", "detectable_content:number_placeholders", {"num_placeholders": 2},
     "你好 [姓名]，地址是 [地址]。", True),
    ("zh", "detectable_content:number_placeholders", {"num_placeholders": 2}, "你好。", False),
    ("en", "detectable_content:postscript", {"postscript_marker": "P.S."},
     "Bye.\nP.S. See you.", True),
    ("en", "detectable_content:postscript", {"postscript_marker": "P.P.S"},
     "Bye.\np. p. s. one more thing", True),
    ("en", "detectable_content:postscript", {"postscript_marker": "P.S."}, "Bye.", False),
    ("zh", "detectable_content:postscript", {"postscript_marker": "附言"},
     "再见。\n附言：明天见。", True),
    ("zh", "detectable_content:postscript", {"postscript_marker": "P.S."},
     "再见。\nP.S. 明天见。", True),
    ("zh", "detectable_content:postscript", {"postscript_marker": "附言"}, "再见。", False),
    ("en", "detectable_format:number_bullet_lists", {"num_bullets": 2}, "* tea\n* cake", True),
    ("en", "detectable_format:number_bullet_lists", {"num_bullets": 2},
     "* tea\n* cake\n- jam", False),
    ("zh", "detectable_format:number_bullet_lists", {"num_bullets": 2},
     "* 第一点\n- 第二点", True),
    ("zh", "detectable_format:number_bullet_lists", {"num_bullets": 2}, "* 第一点", False),
    ("en", "detectable_format:constrained_response", {}, "Hmm. My answer is maybe.", True),
    ("en", "detectable_format:constrained_response", {}, "Yes.", False),
    ("en", "detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*one* and *two*", True),
    ("en", "detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "**bold** and *italic*", True),
    ("en", "detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*one* and * *", False),
    ("zh", "detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "*重点一* 和 *重点二*", True),
    ("zh", "detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "没有重点。", False),
    ("en", "detectable_format:multiple_sections", {"section_spliter": "SECTION",
                                                   "num_sections": 2},
     "SECTION 1\nTea.\nSECTION 2\nCake.", True),
    ("en", "detectable_format:multiple_sections", {"section_spliter": "SECTION",
                                                   "num_sections": 2},
     "SECTION 1\nTea and cake.", False),
    ("zh", "detectable_format:multiple_sections", {"section_spliter": "部分", "num_sections": 2},
     "部分 1\n泡茶。\n部分 2\n喝茶。", True),
    ("zh", "detectable_format:multiple_sections", {"section_spliter": "部分", "num_sections": 2},
     "第一部分\n泡茶。\n第二部分\n喝茶。", False),
    ("en", "detectable_format:json_format", {}, '```json\n{"drink": "tea"}\n```', True),
    ("en", "detectable_format:json_format", {}, 'Here you go: {"drink": "tea"}', False),
    ("zh", "detectable_format:json_format", {}, '{"饮料": "茶"}', True),
    ("zh", "detectable_format:json_format", {}, "饮料是茶。", False),
    ("en", "detectable_format:title", {}, "<<Tea Time>>\nA poem.", True),
    ("en", "detectable_format:title", {}, "<< >>\nA poem.", False),
    ("zh", "detectable_format:title", {}, "<<春天的歌>>\n一首诗。", True),
    ("zh", "detectable_format:title", {}, "《春天的歌》\n一首诗。", False),
    ("en", "combination:two_responses", {}, "Tea.\n******\nCake.", True),
    ("en", "combination:two_responses", {}, "Tea.\n******\nTea.", False),  # not different
    ("zh", "combination:two_responses", {}, "第一个回答。\n******\n第二个回答。", True),
    ("zh", "combination:two_responses", {}, "只有一个回答。", False),
    ("en", "combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."},
     "write a poem. Roses are red.", True),
    ("en", "combination:repeat_prompt", {"prompt_to_repeat": "Write a poem."},
     "Sure! Write a poem.", False),
    ("zh", "combination:repeat_prompt", {"prompt_to_repeat": "写一首诗。"},
     "写一首诗。\n春眠不觉晓。", True),
    ("zh", "combination:repeat_prompt", {"prompt_to_repeat": "写一首诗。"},
     "好的：写一首诗。", False),
    ("en", "startend:end_checker", {"end_phrase": "Any other questions?"},
     '"Done. any other questions?"', True),
    ("en", "startend:end_checker", {"end_phrase": "Any other questions?"},
     "Any other questions? Bye.", False),
    ("zh", "startend:end_checker", {"end_phrase": "感谢阅读。"}, "正文。感谢阅读。", True),
    ("zh", "startend:end_checker", {"end_phrase": "感谢阅读。"}, "感谢阅读。再见。", False),
    ("en", "startend:quotation", {}, '  "Hello there."\n', True),
    ("en", "startend:quotation", {}, "Hello there.", False),
    ("zh", "startend:quotation", {}, '"你好。"', True),
    ("zh", "startend:quotation", {}, "“你好。”", False),  # ASCII double quotes, as asked
    ("en", "change_case:capital_word_frequency", {"capital_frequency": 3,
                                                  "capital_relation": "at least"},
     "THIS is VERY WELL-KNOWN.", True),  # a hyphenated word counts once
    ("en", "change_case:capital_word_frequency", {"capital_frequency": 2,
                                                  "capital_relation": "less than"},
     "THIS is VERY good.", False),
    ("en", "change_case:english_capital", {}, "THIS IS AN ENGLISH SENTENCE ABOUT CATS.", True),
    ("en", "change_case:english_capital", {}, "This is an English sentence about cats.", False),
    ("en", "change_case:english_capital", {},
     "CECI EST UNE PHRASE EN FRANÇAIS SUR LES CHATS.", False),
    ("en", "change_case:english_lowercase", {}, "this is an english sentence about cats.", True),
    ("en", "change_case:english_lowercase", {}, "This is an English sentence about cats.", False),
    ("en", "punctuation:no_comma", {}, "No commas here.", True),
    ("en", "punctuation:no_comma", {}, "Yes, one.", False),
    ("zh", "punctuation:no_comma", {}, "这里没有逗号。", True),
    ("zh", "punctuation:no_comma", {}, "有逗号，对吧", False),
    ("zh", "punctuation:no_comma", {}, "苹果、香蕉和梨", False),  # the enumeration comma
]


@pytest.mark.parametrize("lang,iid,kwargs,response,expected", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[4]}-{i}" for i, c in enumerate(CASES)])
def test_checker(lang, iid, kwargs, response, expected):
    assert check_instruction(iid, response, **kwargs) is expected


def test_every_id_has_positive_and_negative_cases_in_each_language_it_applies_to():
    assert set(ENGLISH_ONLY) < set(INSTRUCTIONS)
    for lang in ("en", "zh"):
        ids = [i for i in INSTRUCTIONS if lang == "en" or i not in ENGLISH_ONLY]
        for expected in (True, False):
            covered = {c[1] for c in CASES if c[0] == lang and c[4] is expected}
            assert covered >= set(ids), (lang, expected, set(ids) - covered)


def test_an_empty_response_follows_nothing():
    assert not check_instruction("punctuation:no_comma", "  \n")
    result = score_ifeval([IFEvalPrompt(1, "p", ["punctuation:no_comma"], [{}])], [""])
    assert result["prompt_level_loose_acc"] == 0.0


def test_sentences_and_words():
    assert split_sentences("Dr. Li met us. It rained! 我们回家了。然后睡觉") == [
        "Dr. Li met us.", "It rained!", "我们回家了。", "然后睡觉"]
    assert split_sentences("J. R. R. Tolkien wrote books. He died in 1973.") == [
        "J. R. R. Tolkien wrote books.", "He died in 1973."]
    assert split_sentences("Wait... what? Yes. Visit example.com today.") == [
        "Wait... what?", "Yes.", "Visit example.com today."]
    assert split_sentences('他说:"好的。"然后走了') == ['他说:"好的。"', "然后走了"]
    assert count_sentences("你好!我很好?是的") == 3  # ! and ? before Chinese text
    assert count_sentences("***\n* \n") == 0
    # Without Chinese, words are the reference's \w+ tokens.
    text = "Don't panic: it's 3.5 km, e.g. a short walk."
    assert count_words(text) == len(re.findall(r"\w+", text)) == 13
    assert count_words("我用Python写代码") == 6


def test_language_detection_is_seeded_and_accepts_both_chinese_scripts():
    text = "這是一個簡單的測試句子，我們用它來檢查語言。"
    assert {detect_language(text) for _ in range(3)} == {"zh-tw"}
    assert detect_language("这是一个简单的测试句子，我们用它来检查语言。") == "zh-cn"
    assert detect_language("12345") is None
    # Nothing to detect counts as followed, as in the reference.
    assert check_instruction("language:response_language", "12345", language="zh")
    assert not check_instruction("language:response_language",
                                 "この文章は日本語で書かれています。", language="zh")


def test_commas_include_the_chinese_ones():
    assert {",", "，", "、"} <= set(COMMAS)


# --- strict and loose ----------------------------------------------------------------


def test_loose_variants_are_ifevals_eight():
    v = loose_variants("Sure!\n**Tea**\nBye")
    assert v == ["Sure!\n**Tea**\nBye", "Sure!\nTea\nBye", "**Tea**\nBye", "Sure!\n**Tea**",
                 "**Tea**", "Tea\nBye", "Sure!\nTea", "Tea"]


def test_loose_forgives_a_chatty_first_line_and_markdown_but_strict_does_not():
    prompts = [
        IFEvalPrompt("q", "Quote it.", ["startend:quotation"], [{}]),
        IFEvalPrompt("e", "End it.", ["startend:end_checker"], [{"end_phrase": "Bye."}]),
        IFEvalPrompt("both", "Two.", ["punctuation:no_comma", "startend:quotation"], [{}, {}]),
        IFEvalPrompt("none", "No comma.", ["punctuation:no_comma"], [{}]),
    ]
    responses = ['Sure, here it is:\n"Tea is good."', "Tea is good. **Bye.**",
                 '"Tea is good."', "Tea, cake."]
    report = score_ifeval(prompts, responses)
    r = report["results"]
    assert [x["follow_all_instructions"] for x in r] == [False, False, True, False]
    assert [x["follow_all_instructions_loose"] for x in r] == [True, True, True, False]
    assert r[2]["follow_instruction_list"] == [True, True]
    # 5 instructions; strict: 2 followed (prompt "both"), loose: 4.
    assert report["prompt_level_strict_acc"] == pytest.approx(1 / 4)
    assert report["prompt_level_loose_acc"] == pytest.approx(3 / 4)
    assert report["inst_level_strict_acc"] == pytest.approx(2 / 5)
    assert report["inst_level_loose_acc"] == pytest.approx(4 / 5)
    assert report["by_instruction"]["startend:quotation"] == {
        "n": 2, "strict_acc": 0.5, "loose_acc": 1.0}
    assert report["by_lang"] == {}  # no prompt has a lang


def test_by_lang_splits_the_four_accuracies():
    prompts = [IFEvalPrompt(1, "a", ["punctuation:no_comma"], [{}], "en"),
               IFEvalPrompt(2, "b", ["punctuation:no_comma"], [{}], "zh")]
    report = score_ifeval(prompts, ["No commas.", "有逗号，对"])
    assert report["by_lang"]["en"]["prompt_level_strict_acc"] == 1.0
    assert report["by_lang"]["zh"]["prompt_level_strict_acc"] == 0.0
    assert report["by_lang"]["zh"]["num_prompts"] == 1


# --- validation and files --------------------------------------------------------------


@pytest.mark.parametrize("ids,kwargs,field", [
    (["keywords:nonsense"], [{}], "instruction_id_list[0]"),
    (["punctuation:no_comma"], [{}, {}], "kwargs"),
    ([], [], "instruction_id_list"),
    (["length_constraints:number_words"], [{"num_words": 5}], "kwargs[0].relation"),
    (["length_constraints:number_words"], [{"num_words": 5, "relation": "at most"}],
     "kwargs[0].relation"),
    (["length_constraints:number_words"], [{"num_words": "5", "relation": "at least"}],
     "kwargs[0].num_words"),
    (["punctuation:no_comma", "startend:quotation"], [{}, {"quote": "'"}], "kwargs[1].quote"),
    (["keywords:existence"], [{"keywords": []}], "kwargs[0].keywords"),
    (["keywords:letter_frequency"], [{"letter": "ab", "let_frequency": 1,
                                      "let_relation": "at least"}], "kwargs[0].letter"),
    (["length_constraints:nth_paragraph_first_word"],
     [{"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "so"}], "kwargs[0].nth_paragraph"),
])
def test_bad_instructions_name_the_field(ids, kwargs, field):
    with pytest.raises(InstructionError) as err:
        validate_instructions(ids, kwargs)
    assert err.value.field == field


def test_hub_style_kwargs_with_none_and_float_values_are_accepted():
    # The hub copy of IFEval stores every argument name on every line, None where unused.
    kw = validate_instructions(
        ["length_constraints:number_words", "punctuation:no_comma"],
        [{"num_words": 300.0, "relation": "at least", "keywords": None, "language": None},
         {"num_words": None}])
    assert kw == [{"num_words": 300, "relation": "at least"}, {}]


GOOD = {"key": 7, "prompt": "Say hi without commas.", "instruction_id_list":
        ["punctuation:no_comma"], "kwargs": [{}], "response": "Hi there"}


@pytest.mark.parametrize("bad,line,field", [
    ({**GOOD, "key": 8, "instruction_id_list": ["punctuation:no_commas"]}, 2,
     "instruction_id_list[0]"),
    ({k: v for k, v in GOOD.items() if k != "response"} | {"key": 8}, 2, "response"),
    ({**GOOD, "key": 8, "response": None}, 2, "response"),
    ({**GOOD, "key": 8, "instruction_id_list": ["length_constraints:number_words"],
      "kwargs": [{"num_words": -3, "relation": "at least"}]}, 2, "kwargs[0].num_words"),
    ({**GOOD}, 2, "key"),  # duplicate key
    ("{not json", 2, None),
])
def test_bad_lines_raise_data_error_with_file_line_and_field(tmp_path, bad, line, field):
    path = write_jsonl(tmp_path / "answers.jsonl", [GOOD, bad])
    with pytest.raises(DataError) as err:
        read_ifeval_responses(path)
    assert (err.value.line, err.value.field) == (line, field)
    assert "answers.jsonl" in str(err.value) and f"line {line}" in str(err.value)


def test_prompt_files_need_no_response(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{k: v for k, v in GOOD.items() if k != "response"}])
    [prompt] = read_ifeval_prompts(path)
    assert prompt.key == 7 and prompt.lang is None and prompt.kwargs == [{}]


# --- the CLI ---------------------------------------------------------------------------


def test_cli_scores_a_file_in_order(tmp_path):
    rows = [{**GOOD, "key": 3, "lang": "en", "response": "Hi, there"},
            {**GOOD, "key": 1, "lang": "zh", "response": "你好"},
            {"key": 2, "prompt": "Quote.", "instruction_id_list": ["startend:quotation",
             "punctuation:no_comma"], "kwargs": [{}, {}], "response": 'OK:\n"Hi there"'}]
    path = write_jsonl(tmp_path / "answers.jsonl", rows)
    run = subprocess.run([sys.executable, "-m", "ift_tutorial.cli", "score-ifeval",
                          "--input", str(path), "--json"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert {"prompt_level_strict_acc", "prompt_level_loose_acc", "inst_level_strict_acc",
            "inst_level_loose_acc", "results"} <= set(report)
    assert [r["key"] for r in report["results"]] == [3, 1, 2]
    assert [r["follow_all_instructions"] for r in report["results"]] == [False, True, False]
    assert report["results"][2]["follow_instruction_list"] == [False, True]
    assert report["results"][2]["follow_instruction_list_loose"] == [True, True]
    assert report["prompt_level_strict_acc"] == pytest.approx(1 / 3)
    assert report["inst_level_loose_acc"] == pytest.approx(3 / 4)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    path = write_jsonl(tmp_path / "answers.jsonl", [
        GOOD, {**GOOD, "key": 8, "instruction_id_list": ["detectable_format:tittle"]}])
    run = subprocess.run([sys.executable, "-m", "ift_tutorial.cli", "score-ifeval",
                          "--input", str(path), "--json"], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "answers.jsonl, line 2, field 'instruction_id_list[0]'" in run.stderr
    assert "detectable_format:tittle" in run.stderr


def test_cli_text_report_and_missing_file(tmp_path, capsys):
    path = write_jsonl(tmp_path / "a.jsonl", [{**GOOD, "lang": "en"}])
    assert cli.main(["score-ifeval", "--input", str(path)]) == 0
    out = capsys.readouterr().out
    assert "prompt strict" in out and "100.0%" in out and out.splitlines()[-1].startswith("en")
    assert cli.main(["score-ifeval", "--input", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err


# --- the project's prompt set -------------------------------------------------------------


def test_shipped_prompt_set_is_the_generated_one():
    shipped = [json.loads(line) for line in PROMPTS_PATH.read_text(encoding="utf-8").splitlines()]
    assert shipped == build_prompt_set()


def test_prompt_set_validates_and_is_consistent():
    prompts = read_ifeval_prompts()  # every id known, every kwarg accepted
    assert len(prompts) == 300 and len({p.key for p in prompts}) == 300
    for lang in ("en", "zh"):
        mine = [p for p in prompts if p.lang == lang]
        assert len(mine) == 150
        used = {i for p in mine for i in p.instruction_id_list}
        assert used == set(instruction_ids(lang))  # every applicable id, nothing else
    for p in prompts:
        ids = p.instruction_id_list
        assert len(ids) == len(set(ids)) <= 3
        assert not any(b in CONFLICTS[a] for a in ids for b in ids if a != b), p.key
        if p.lang == "zh":
            assert not set(ids) & set(ENGLISH_ONLY)
            assert re.search("[\u4e00-\u9fff]", p.prompt)
        for iid, kw in zip(ids, p.kwargs):
            for value in kw.values():  # the prompt states what its checker will test
                for v in (value if isinstance(value, list) else [value]):
                    if iid != "combination:repeat_prompt" and not isinstance(v, int):
                        assert (str(v) in p.prompt or v in ("less than", "at least")
                                or iid == "language:response_language"), (p.key, iid, v)
            if iid == "combination:repeat_prompt":
                assert p.prompt.startswith(kw["prompt_to_repeat"] + "\n")
        forbidden = {w for iid, kw in zip(ids, p.kwargs) for w in kw.get("forbidden_words", [])}
        required = [str(v) for iid, kw in zip(ids, p.kwargs) if iid != "keywords:forbidden_words"
                    for k, v in kw.items() if k in ("keywords", "keyword", "end_phrase",
                                                    "first_word", "postscript_marker")]
        assert not any(w in r for w in forbidden for r in required), p.key


def test_scoring_the_prompt_set_runs_and_the_prompt_is_no_answer():
    prompts = read_ifeval_prompts()
    report = score_ifeval(prompts, [p.prompt for p in prompts])
    assert len(report["results"]) == 300 and report["num_instructions"] > 450
    assert report["inst_level_strict_acc"] < 0.5
    for r in report["results"]:  # loose only ever adds
        assert all(lo or not s for s, lo in zip(r["follow_instruction_list"],
                                                r["follow_instruction_list_loose"]))
