"""A made-up bilingual world and the pretraining corpus that describes it.

The tiny preset must *know* things before instruction tuning, so that tuning has
something to draw on, yet it must not *follow instructions*: its corpus is plain
English and Chinese prose, never a question followed by its answer. The world has
three kinds of facts, each checkable by exact match later:

* addition of small numbers (``7 + 5 = 12``);
* word reversal of made-up words (``kalo`` reversed is ``olak``);
* where made-up people live (``Bora lives in Zandor``).

Every fact is restated in several paraphrases, in both languages. Restating a
fact in different words teaches the model to copy a name from earlier in its
context to later, which is what an answer to a question needs.

Everything is generated from a seed: the same seed gives the same world and the
same corpus, byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

# Syllables for made-up names and words. They are not English or Chinese words, so
# the model cannot know the facts from anywhere but this corpus.
_ONSETS = list("bdfgklmnprstvz")
_VOWELS = list("aeiou")
_CODAS = ["", "", "", "n", "r", "l", "s"]

# --- paraphrase templates (corpus statements, never questions) ----------------------
# Placeholders: {a} {b} {s} for addition, {w} {r} for reversal, {p} {c} for cities.
# Latin names stand between spaces in Chinese sentences too: with spaces as their own
# token, "Bora" is the same token sequence in every sentence of both languages.

ADDITION_STATEMENTS = {
    "en": [
        "{a} + {b} = {s}.",
        "{a} plus {b} equals {s}.",
        "{a} plus {b} is {s}.",
        "The sum of {a} and {b} is {s}.",
        "Adding {b} to {a} gives {s}.",
    ],
    "zh": [
        "{a} 加 {b} 等于 {s}。",
        "{a} 与 {b} 的和是 {s}。",
        "{a} + {b} = {s}.",
        "把 {a} 和 {b} 加起来，得到 {s}。",
    ],
}

REVERSAL_STATEMENTS = {
    "en": [
        "The word {w} reversed is {r}.",
        "Reversed, {w} becomes {r}.",
        "{w} spelled backwards is {r}.",
        "The reverse of {w} is {r}.",
    ],
    "zh": [
        "{w} 倒过来写是 {r}。",
        "单词 {w} 反过来是 {r}。",
        "{w} 的倒序是 {r}。",
    ],
}

CITY_STATEMENTS = {
    "en": [
        "{p} lives in {c}.",
        "{p} lives in the city of {c}.",
        "The city where {p} lives is {c}.",
        "{c} is the home of {p}.",
        "{p} has a house in {c}.",
    ],
    "zh": [
        "{p} 住在 {c}。",
        "{p} 的家在 {c}。",
        "{p} 生活在 {c} 这座城市。",
        "{c} 是 {p} 住的城市。",
    ],
}

KINDS = ("addition", "reversal", "city")


@dataclass(frozen=True)
class Fact:
    """One checkable fact of the world.

    ``key`` identifies the fact (the item that train and held-out sets must not
    share), ``answer`` is the exact string a correct answer consists of.
    """

    kind: str  # "addition", "reversal" or "city"
    key: str  # e.g. "7+5", "kalo", "Bora"
    slots: tuple[tuple[str, str], ...]  # template values, e.g. (("a","7"),("b","5"),("s","12"))
    answer: str

    def fill(self, template: str) -> str:
        """Put this fact's values into a template string."""
        return template.format(**dict(self.slots))


@dataclass
class World:
    """The facts of the made-up world, by kind."""

    seed: int
    facts: dict[str, list[Fact]] = field(default_factory=dict)
    cities: list[str] = field(default_factory=list)

    def all_facts(self) -> list[Fact]:
        return [f for kind in KINDS for f in self.facts[kind]]


def _made_up_word(rng: random.Random, syllables: int) -> str:
    return "".join(
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + (rng.choice(_CODAS) if i == syllables - 1 else "")
        for i in range(syllables)
    )


def _unique_words(rng: random.Random, n: int, syllables: tuple[int, ...], taken: set[str]) -> list[str]:
    words: list[str] = []
    while len(words) < n:
        w = _made_up_word(rng, rng.choice(syllables))
        # A palindrome would make reversal trivial; a word already used would make two facts clash.
        if w in taken or w == w[::-1]:
            continue
        taken.add(w)
        words.append(w)
    return words


def make_world(
    seed: int = 0,
    max_addend: int = 19,
    n_words: int = 200,
    n_people: int = 240,
    n_cities: int = 16,
) -> World:
    """Generate the world's facts.

    Args:
        seed: the world is a pure function of this seed.
        max_addend: addition facts cover ``a + b`` for ``0 <= a, b <= max_addend``.
        n_words: made-up lowercase words for the reversal facts.
        n_people: made-up people, each living in one of ``n_cities`` made-up cities.
    """
    rng = random.Random(seed)
    taken: set[str] = set()
    addition = [
        Fact("addition", f"{a}+{b}", (("a", str(a)), ("b", str(b)), ("s", str(a + b))), str(a + b))
        for a in range(max_addend + 1)
        for b in range(max_addend + 1)
    ]
    words = _unique_words(rng, n_words, (2,), taken)
    reversal = [Fact("reversal", w, (("w", w), ("r", w[::-1])), w[::-1]) for w in words]
    cities = [c.capitalize() for c in _unique_words(rng, n_cities, (3,), taken)]
    people = [p.capitalize() for p in _unique_words(rng, n_people, (2,), taken)]
    city = [Fact("city", p, (("p", p), ("c", c)), c) for p in people for c in [rng.choice(cities)]]
    return World(seed=seed, facts={"addition": addition, "reversal": reversal, "city": city},
                 cities=cities)


_STATEMENTS = {"addition": ADDITION_STATEMENTS, "reversal": REVERSAL_STATEMENTS,
               "city": CITY_STATEMENTS}


def statements(fact: Fact, lang: str) -> list[str]:
    """Every paraphrase of ``fact`` in ``lang`` ("en" or "zh")."""
    return [fact.fill(t) for t in _STATEMENTS[fact.kind][lang]]


def make_document(rng: random.Random, world: World) -> str:
    """One corpus document: a main fact restated 2-4 times, mixed with 1-3 other facts.

    Restating the same fact in other words within one document is what teaches the
    model to look back at its context and copy from it.
    """
    facts = world.all_facts()
    main = rng.choice(facts)
    sentences = []
    for _ in range(rng.randint(2, 4)):
        lang = rng.choice(("en", "zh"))
        sentences.append(rng.choice(statements(main, lang)))
    for _ in range(rng.randint(1, 3)):
        other = rng.choice(facts)
        lang = rng.choice(("en", "zh"))
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(statements(other, lang)))
    return " ".join(sentences)


def iter_corpus(world: World, n_documents: int, seed: int = 0) -> Iterator[str]:
    """Yield ``n_documents`` documents, reproducibly from ``seed``."""
    rng = random.Random(seed + 1_000_003)
    for _ in range(n_documents):
        yield make_document(rng, world)


def make_corpus(world: World, n_documents: int, seed: int = 0) -> list[str]:
    """The pretraining corpus as a list of documents (plain text, no chat format)."""
    return list(iter_corpus(world, n_documents, seed))
