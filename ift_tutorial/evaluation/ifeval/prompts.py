"""The project's bilingual IFEval-format prompt set, built from templates with a seed.

Each prompt is a small writing task ("Write a letter to a friend about baking bread
at home.") followed by one to three verifiable instructions, worded for the prompt's
language, with the arguments that :mod:`ift_tutorial.evaluation.ifeval` checks::

    {"key": 1007, "lang": "en",
     "prompt": "Write a short blog post about cycling to work. Answer with less than 80 words.",
     "instruction_id_list": ["length_constraints:number_words"],
     "kwargs": [{"num_words": 80, "relation": "less than"}]}

Every instruction id is the *first* instruction of the same number of prompts (the
ids take turns); zero to two more are drawn among those that do not conflict with it
(:data:`CONFLICTS`: "give two responses" and "wrap everything in JSON" cannot both
hold). Chinese prompts use only the ids that make sense for a Chinese answer
(everything but :data:`ift_tutorial.evaluation.ifeval.registry.ENGLISH_ONLY`).

The file ``data/ifeval/prompts.jsonl`` is exactly ``build_prompt_set()``; a test
checks it. Rebuild with ``python -m ift_tutorial.evaluation.ifeval.prompts``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .layout import CONSTRAINED_RESPONSES
from .registry import ENGLISH_ONLY, INSTRUCTIONS
from .scoring import PROMPTS_PATH

LANGS = ("en", "zh")

TOPICS = {
    "en": ["learning to cook", "growing tomatoes on a balcony", "cycling to work",
           "reading before bed", "visiting a night market", "learning to play the violin",
           "camping by a lake", "baking bread at home", "volunteering at a library",
           "keeping a journal", "learning a second language", "adopting a rescue cat",
           "hiking in the mountains", "learning to swim", "making tea",
           "building a birdhouse", "taking the train across a country", "planting a tree",
           "saving money for a trip", "repairing an old bicycle"],
    "zh": ["学做饭", "在阳台上种番茄", "骑自行车上班", "睡前读书", "逛夜市", "学拉小提琴",
           "在湖边露营", "在家烤面包", "去图书馆做志愿者", "写日记", "学一门外语",
           "领养一只流浪猫", "去山里徒步", "学游泳", "泡茶", "做一个鸟窝", "坐火车旅行",
           "种一棵树", "为旅行存钱", "修一辆旧自行车"],
}

TASKS = {
    "en": ["Write a short blog post about {topic}.",
           "Explain to a ten-year-old why {topic} can be fun.",
           "Write a letter to a friend about {topic}.",
           "Write a short guide for beginners on {topic}.",
           "Write a short story about a family {topic}.",
           "List some tips for {topic}."],
    "zh": ["写一篇关于{topic}的短博客。", "向一个十岁的孩子解释为什么{topic}很有趣。",
           "给朋友写一封信，聊聊{topic}。", "为初学者写一份关于{topic}的简短指南。",
           "写一个小故事，讲一家人{topic}的经历。", "列出一些关于{topic}的建议。"],
}

# Yes/no questions for detectable_format:constrained_response (English only).
QUESTIONS = ["Is {topic} worth trying?", "Would you recommend {topic} to a busy student?",
             "Is {topic} a good way to relax?"]

# Word pools, disjoint across instructions, so that no prompt asks for a word that
# another of its instructions forbids.
KEYWORDS = {"en": ["patience", "window", "morning", "neighbour", "notebook", "kitchen",
                   "weather", "music", "lantern", "bridge"],
            "zh": ["耐心", "窗户", "早晨", "邻居", "笔记本", "厨房", "天气", "音乐", "灯笼",
                   "小桥"]}
FREQUENT_WORDS = {"en": ["time", "friend", "small", "daily", "simple"],
                  "zh": ["时间", "朋友", "每天", "简单", "开心"]}
FORBIDDEN_WORDS = {"en": ["very", "really", "great", "nice", "just", "stuff"],
                   "zh": ["非常", "真的", "东西", "觉得", "特别"]}
FIRST_WORDS = {"en": ["today", "first", "however", "finally", "imagine", "remember"],
               "zh": ["首先", "今天", "最后", "想象一下", "记住", "从前"]}
END_PHRASES = {"en": ["Any other questions?", "Is there anything else I can help with?",
                      "Thank you for reading."],
               "zh": ["还有其他问题吗？", "希望这些对你有帮助。", "感谢阅读。"]}
POSTSCRIPT_MARKERS = {"en": ["P.S.", "P.P.S"], "zh": ["P.S.", "附言"]}
SECTION_SPLITTERS = {"en": ["SECTION", "Section"], "zh": ["部分"]}
# For response_language in English prompts: the code IFEval uses and the name.
OTHER_LANGUAGES = [("zh", "Chinese"), ("fr", "French"), ("es", "Spanish"), ("de", "German")]


# --- how each instruction is worded: (rng, lang) -> (sentence, kwargs) ----------------

Builder = Callable[[random.Random, str], tuple[str, dict[str, Any]]]


def _relation(rng: random.Random) -> str:
    return rng.choice(("less than", "at least"))


def _quoted_list(words: list[str], lang: str, last: str) -> str:
    """'"a", "b" and "c"' (English) or '“a”、“b”和“c”' (Chinese)."""
    q = ['"' + w + '"' for w in words] if lang == "en" else ["“" + w + "”" for w in words]
    sep = ", " if lang == "en" else "、"
    return q[0] if len(q) == 1 else sep.join(q[:-1]) + last + q[-1]


def _keywords_existence(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    words = rng.sample(KEYWORDS[lang], rng.randint(1, 3))
    if lang == "en":
        noun = "keyword" if len(words) == 1 else "keywords"
        return f"Include the {noun} {_quoted_list(words, lang, ' and ')} in the response.", \
            {"keywords": words}
    return f"回答中必须包含关键词{_quoted_list(words, lang, '和')}。", {"keywords": words}


def _keywords_frequency(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    word, relation = rng.choice(FREQUENT_WORDS[lang]), _relation(rng)
    n = rng.randint(2, 4) if relation == "at least" else rng.randint(2, 3)
    kwargs = {"keyword": word, "frequency": n, "relation": relation}
    if lang == "en":
        return f'In your response, the word "{word}" should appear {relation} {n} times.', kwargs
    if relation == "at least":
        return f"回答中“{word}”一词至少出现{n}次。", kwargs
    return f"回答中“{word}”一词出现的次数要少于{n}次。", kwargs


def _keywords_forbidden_words(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    words = rng.sample(FORBIDDEN_WORDS[lang], rng.randint(1, 2))
    if lang == "en":
        return f"Do not include the word{'s' if len(words) > 1 else ''} " \
            f"{_quoted_list(words, lang, ' or ')} in the response.", {"forbidden_words": words}
    return f"回答中不要出现{_quoted_list(words, lang, '或')}这样的词。", {"forbidden_words": words}


def _keywords_letter_frequency(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    relation = _relation(rng)
    if relation == "at least":
        letter, n = rng.choice("eaton"), rng.randint(8, 20)
    else:  # rare letters, with room for one or two in a fixed phrase ("questions")
        letter, n = rng.choice("zqxj"), rng.randint(3, 5)
    return f'In your response, the letter "{letter}" should appear {relation} {n} times.', \
        {"letter": letter, "let_frequency": n, "let_relation": relation}


def _response_language(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    if lang == "zh":
        return "请全部用中文回答，不允许使用其他语言。", {"language": "zh"}
    code, name = rng.choice(OTHER_LANGUAGES)
    return f"Your ENTIRE response should be in {name} language, no other language is " \
        "allowed.", {"language": code}


def _number_sentences(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    relation, n = _relation(rng), rng.randint(3, 8)
    kwargs = {"num_sentences": n, "relation": relation}
    if lang == "en":
        return f"Your response should contain {relation} {n} sentences.", kwargs
    return (f"回答至少包含{n}句话。" if relation == "at least" else f"回答应少于{n}句话。"), kwargs


def _number_paragraphs(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    n = rng.randint(2, 4)
    if lang == "en":
        return f"There should be exactly {n} paragraphs. Paragraphs are separated with the " \
            "markdown divider: ***", {"num_paragraphs": n}
    return f"回答应恰好分为{n}段，段与段之间用 markdown 分隔线 *** 隔开。", {"num_paragraphs": n}


def _number_words(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    relation = _relation(rng)
    # Chinese counts characters (each Han character is a word): about 1.5 per English word.
    low, high = (60, 200) if lang == "en" else (80, 300)
    n = rng.randrange(low, high + 1, 10)
    kwargs = {"num_words": n, "relation": relation}
    if lang == "en":
        return f"Answer with {relation} {n} words.", kwargs
    return (f"回答至少{n}个字。" if relation == "at least" else f"回答少于{n}个字。"), kwargs


def _nth_paragraph_first_word(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    n = rng.randint(2, 4)
    k, word = rng.randint(1, n), rng.choice(FIRST_WORDS[lang])
    kwargs = {"num_paragraphs": n, "nth_paragraph": k, "first_word": word}
    if lang == "en":
        return f"There should be {n} paragraphs. Paragraphs and only paragraphs are separated " \
            f'with each other by two new lines. Paragraph {k} must start with the word "{word}".', \
            kwargs
    return f"回答应分为{n}段，段与段之间只用一个空行分隔。第{k}段必须以“{word}”开头。", kwargs


def _number_placeholders(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    n = rng.randint(1, 4)
    if lang == "en":
        return f"The response must contain at least {n} placeholders represented by square " \
            "brackets, such as [address].", {"num_placeholders": n}
    return f"回答中至少包含{n}个用方括号表示的占位符，例如 [地址]。", {"num_placeholders": n}


def _postscript(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    marker = rng.choice(POSTSCRIPT_MARKERS[lang])
    if lang == "en":
        return "At the end of your response, please explicitly add a postscript starting " \
            f"with {marker}", {"postscript_marker": marker}
    shown = "P.S." if marker == "P.S." else marker + "："
    return f"请在回答末尾加一段附言，以“{shown}”开头。", {"postscript_marker": marker}


def _bullet_lists(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    n = rng.randint(2, 5)
    if lang == "en":
        return f"Your answer must contain exactly {n} bullet points. Use the markdown bullet " \
            "points such as:\n* This is point 1.\n* This is point 2", {"num_bullets": n}
    return f"回答必须恰好包含{n}个要点，使用 markdown 列表符号，例如：\n* 这是第一点。\n* 这是第二点。", \
        {"num_bullets": n}


def _constrained_response(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    options = ", ".join(f'"{o}"' for o in CONSTRAINED_RESPONSES)
    return f"Answer with one of the following options: ({options})", {}


def _highlighted_sections(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    n = rng.randint(1, 4)
    if lang == "en":
        return f"Highlight at least {n} sections in your answer with markdown, i.e. " \
            "*highlighted section*.", {"num_highlights": n}
    return f"请用 markdown 至少突出显示{n}处内容，例如 *重点内容*。", {"num_highlights": n}


def _multiple_sections(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    n, splitter = rng.randint(2, 4), rng.choice(SECTION_SPLITTERS[lang])
    kwargs = {"section_spliter": splitter, "num_sections": n}
    if lang == "en":
        return f"Your response must have {n} sections. Mark the beginning of each section " \
            f"with {splitter} X, such as: {splitter} 1.", kwargs
    return f"回答必须分为{n}个部分，每个部分以“{splitter} X”开头，例如“{splitter} 1”。", kwargs


def _fixed(en: str, zh: str) -> Builder:
    """A builder for an instruction without arguments."""
    return lambda rng, lang: (en if lang == "en" else zh, {})


REPEAT_SENTENCE = {
    "en": "First repeat the request word for word without change, then give your answer "
          "(1. do not say any words or characters before repeating the request; 2. the "
          "request you need to repeat does not include this sentence)",
    "zh": "请先一字不差地重复上面的请求，然后再回答（1. 重复之前不要说任何话；2. 需要重复的请求不包括这句话）。",
}


def _end_checker(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    phrase = rng.choice(END_PHRASES[lang])
    if lang == "en":
        return f'Finish your response with this exact phrase "{phrase}". No other words ' \
            "should follow this phrase.", {"end_phrase": phrase}
    return f"回答必须以“{phrase}”这句话结尾，后面不能再有任何内容。", {"end_phrase": phrase}


def _capital_word_frequency(rng: random.Random, lang: str) -> tuple[str, dict[str, Any]]:
    relation = _relation(rng)
    n = rng.randint(2, 6) if relation == "at least" else rng.randint(3, 6)
    return f"In your response, words with all capital letters should appear {relation} {n} " \
        "times.", {"capital_frequency": n, "capital_relation": relation}


BUILDERS: dict[str, Builder] = {
    "keywords:existence": _keywords_existence,
    "keywords:frequency": _keywords_frequency,
    "keywords:forbidden_words": _keywords_forbidden_words,
    "keywords:letter_frequency": _keywords_letter_frequency,
    "language:response_language": _response_language,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:number_words": _number_words,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_content:number_placeholders": _number_placeholders,
    "detectable_content:postscript": _postscript,
    "detectable_format:number_bullet_lists": _bullet_lists,
    "detectable_format:constrained_response": _constrained_response,
    "detectable_format:number_highlighted_sections": _highlighted_sections,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:json_format": _fixed(
        "Entire output should be wrapped in JSON format. You can use markdown ticks such as ```.",
        "整个输出必须是 JSON 格式，可以使用 markdown 代码块标记 ```。"),
    "detectable_format:title": _fixed(
        "Your answer must contain a title, wrapped in double angular brackets, such as "
        "<<poem of joy>>.", "回答必须包含一个用双尖括号括起来的标题，例如 <<春天的歌>>。"),
    "combination:two_responses": _fixed(
        "Give two different responses. Responses and only responses should be separated by "
        "6 asterisk symbols: ******.", "请给出两个不同的回答，两个回答之间只用6个星号 ****** 分隔。"),
    "combination:repeat_prompt": lambda rng, lang: (REPEAT_SENTENCE[lang], {}),  # see _prompt
    "startend:end_checker": _end_checker,
    "startend:quotation": _fixed("Wrap your entire response with double quotation marks.",
                                 '请用英文双引号 " 把整个回答括起来。'),
    "change_case:capital_word_frequency": _capital_word_frequency,
    "change_case:english_capital": _fixed(
        "Your entire response should be in English, and in all capital letters.", ""),
    "change_case:english_lowercase": _fixed(
        "Your entire response should be in English, and in all lowercase letters. No capital "
        "letters are allowed.", ""),
    "punctuation:no_comma": _fixed("In your entire response, refrain from the use of any commas.",
                                   "整个回答中不要使用任何逗号（包括“，”“、”和“,”）。"),
}

# --- which instructions cannot share a prompt ----------------------------------------

_ALL = frozenset(INSTRUCTIONS)


def _symmetric(pairs: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """Every id conflicts with itself, and A conflicts with B iff B conflicts with A."""
    out = {i: set(pairs.get(i, ())) | {i} for i in INSTRUCTIONS}
    for a, others in pairs.items():
        for b in others:
            out[b].add(a)
    return {i: frozenset(s) for i, s in out.items()}


#: Instruction ids that cannot share a prompt with each other. Adapted from IFEval's
#: own conflict table, plus: a repeated request holds commas, and an end phrase cannot
#: follow a postscript that must come last.
CONFLICTS: dict[str, frozenset[str]] = _symmetric({
    "detectable_format:constrained_response": _ALL,
    "detectable_format:json_format": _ALL - {"keywords:existence", "keywords:forbidden_words"},
    "combination:two_responses": _ALL - {
        "keywords:existence", "keywords:forbidden_words", "language:response_language",
        "detectable_format:title", "punctuation:no_comma"},
    "combination:repeat_prompt": _ALL - {"keywords:existence", "detectable_format:title"},
    "length_constraints:number_paragraphs": frozenset({
        "length_constraints:nth_paragraph_first_word", "length_constraints:number_sentences"}),
    "change_case:english_lowercase": frozenset({
        "change_case:english_capital", "change_case:capital_word_frequency",
        "detectable_format:multiple_sections"}),
    "change_case:english_capital": frozenset({
        "change_case:capital_word_frequency", "detectable_format:multiple_sections"}),
    "startend:quotation": frozenset({"detectable_format:title"}),
    "startend:end_checker": frozenset({"detectable_content:postscript"}),
})

#: What cannot go with an answer in another language than the prompt's: English
#: keywords, English end phrases, English letter and case rules.
FOREIGN_LANGUAGE_CONFLICTS = frozenset({
    "detectable_format:multiple_sections", "keywords:existence", "keywords:frequency",
    "keywords:forbidden_words", "keywords:letter_frequency", "startend:end_checker",
    "change_case:english_capital", "change_case:english_lowercase",
    "change_case:capital_word_frequency", "length_constraints:nth_paragraph_first_word"})


def instruction_ids(lang: str) -> list[str]:
    """The instruction ids that prompts in ``lang`` use, in registry order."""
    return [i for i in INSTRUCTIONS if lang == "en" or i not in ENGLISH_ONLY]


def _compatible(candidate: str, chosen: list[str], lang: str) -> bool:
    if any(candidate in CONFLICTS[c] for c in chosen):
        return False
    # English prompts ask for another language; Chinese ones for Chinese (no conflict).
    if lang == "en" and "language:response_language" in chosen + [candidate]:
        return not any(i in FOREIGN_LANGUAGE_CONFLICTS for i in chosen + [candidate])
    return True


def _prompt(rng: random.Random, lang: str, key: int, first: str) -> dict[str, Any]:
    """One prompt whose first instruction is ``first``, with 0-2 more drawn at random."""
    chosen = [first]
    for _ in range(rng.choices((0, 1, 2), weights=(4, 4, 2))[0]):
        pool = [i for i in instruction_ids(lang) if _compatible(i, chosen, lang)]
        if not pool:
            break
        chosen.append(rng.choice(pool))
    topic = rng.choice(TOPICS[lang])
    task = rng.choice(QUESTIONS if first == "detectable_format:constrained_response"
                      else TASKS[lang]).format(topic=topic)
    texts, kwargs = [], []
    for iid in chosen:
        text, kw = BUILDERS[iid](rng, lang)
        texts.append(None if iid == "combination:repeat_prompt" else text)
        kwargs.append(kw)
    request = task
    for text in (t for t in texts if t is not None):
        # After a multi-line example (bullet points) the next instruction starts a line.
        request += "\n" if "\n" in request else (" " if lang == "en" else "")
        request += text
    prompt = request
    if "combination:repeat_prompt" in chosen:
        # The request to repeat is everything but the sentence that asks for it.
        kwargs[chosen.index("combination:repeat_prompt")] = {"prompt_to_repeat": request}
        prompt = request + "\n" + REPEAT_SENTENCE[lang]
    return {"key": key, "lang": lang, "prompt": prompt, "instruction_id_list": chosen,
            "kwargs": kwargs}


def build_prompt_set(n_per_lang: int = 150, seed: int = 0) -> list[dict[str, Any]]:
    """The bilingual prompt set: ``n_per_lang`` English prompts (keys 1000...), then as
    many Chinese ones (keys 2000...), the same for the same arguments.

    Example:
        >>> rows = build_prompt_set(2)
        >>> firsts = [(r["key"], r["lang"], r["instruction_id_list"][0]) for r in rows]
        >>> firsts  # doctest: +NORMALIZE_WHITESPACE
        [(1000, 'en', 'keywords:existence'), (1001, 'en', 'keywords:frequency'),
         (2000, 'zh', 'keywords:existence'), (2001, 'zh', 'keywords:frequency')]
    """
    rows = []
    for base, lang in zip((1000, 2000), LANGS):
        rng, ids = random.Random(f"{seed}-{lang}"), instruction_ids(lang)
        rows += [_prompt(rng, lang, base + i, ids[i % len(ids)]) for i in range(n_per_lang)]
    return rows


def write_prompt_set(path: str | os.PathLike[str] = PROMPTS_PATH, **kwargs: Any) -> Path:
    """Write :func:`build_prompt_set` as JSONL (UTF-8, Chinese kept readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in build_prompt_set(**kwargs):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


if __name__ == "__main__":
    from ...paths import display_path

    print(f"wrote {display_path(write_prompt_set())}")
