"""Verifiable instruction following (IFEval), in English and Chinese, offline.

IFEval (Zhou et al. 2023, "Instruction-Following Evaluation for Large Language
Models") scores what instruction tuning is for: does the model do what the prompt
*says*? Each prompt carries instructions that a program can check without a judge
model ("answer in less than 50 words", "wrap the answer in double quotes")::

    {"key": 1001, "prompt": "Write a haiku about tea. Do not use any commas.",
     "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}

Four numbers summarise a run:

* **prompt level**: the share of prompts whose instructions are *all* followed;
* **instruction level**: the share of single instructions that are followed;
* **strict**: the response is checked as it is;
* **loose**: an instruction counts as followed if *any* of eight variants of the
  response follows it: the response, without its first line, without its last line,
  without both, and each of these four with every ``*`` removed. Loose forgives a
  chatty "Sure, here it is:" line and markdown bold that breaks a pattern.

The checkers follow the definitions of the reference implementation
(google-research/instruction_following_eval) instruction by instruction; the
docstring of each says what it checks. What differs, and why:

* **No NLTK.** The reference counts sentences with NLTK's punkt model, which must be
  downloaded; :func:`ift_tutorial.evaluation.ifeval.text.split_sentences` is a
  regular-expression splitter.
* **Chinese.** Words are counted so that each Han character is one word (Chinese
  has no spaces; the reference's ``\\w+`` counts a whole run of Chinese characters
  as one word); sentences also end at 。！？ (and at ! or ? followed by a Han character);
  ``punctuation:no_comma`` also rejects the Chinese commas '，' and '、' (the
  enumeration comma: a response that swaps every '，' for '、' has not avoided
  commas); ``language:response_language`` with ``"zh"`` accepts simplified and
  traditional Chinese (the detector says ``zh-cn`` or ``zh-tw``); a forbidden or
  first word written in Han characters is found without word boundaries.
* **Keywords are text, not regular expressions** (``re.escape``): a keyword such as
  ``C++`` is searched for literally instead of crashing the scorer.
* **A letter is the character given.** The reference replaces a ``letter`` that is
  not a-z (``"#"``, ``"!"`` in IFEval's own data) by a *random* letter; here any
  single character is counted as given.
* **Empty paragraphs are skipped** when ``nth_paragraph_first_word`` picks the n-th
  paragraph (the reference indexes the list with the empty ones still in).
* **kwargs are checked.** A missing or unknown argument is an error; the reference
  draws a random value for a missing one.

Some instructions only make sense when the response is in English; they are listed
in :data:`ift_tutorial.evaluation.ifeval.registry.ENGLISH_ONLY` with the reason, and the
project's Chinese prompts do not use them. Language detection uses ``langdetect`` with a
fixed seed (its algorithm is randomised) on lower-cased text, and takes text written
mostly in Han characters as Chinese (:func:`ift_tutorial.evaluation.ifeval.text.detect_language`);
as in the reference, text in which it finds no letters at all counts as following a
language instruction.

The subpackage, one concept a module (import a name from the module that defines it):

* :mod:`~ift_tutorial.evaluation.ifeval.text`: words, sentences, language detection;
* the checkers, one function per instruction id, by IFEval's families:
  :mod:`~ift_tutorial.evaluation.ifeval.wording` (``keywords:``, ``language:``,
  ``change_case:``, ``punctuation:``), :mod:`~ift_tutorial.evaluation.ifeval.length`
  (``length_constraints:``) and :mod:`~ift_tutorial.evaluation.ifeval.layout`
  (``detectable_content:``, ``detectable_format:``, ``combination:``, ``startend:``);
* :mod:`~ift_tutorial.evaluation.ifeval.registry`: id -> checker and kwargs, validation;
* :mod:`~ift_tutorial.evaluation.ifeval.scoring`: prompts, scores, files, the CLI;
* :mod:`~ift_tutorial.evaluation.ifeval.prompts`: the project's bilingual prompt set.

Example:
    >>> from ift_tutorial.evaluation.ifeval.scoring import IFEvalPrompt, score_ifeval
    >>> p = IFEvalPrompt(key=1, prompt="Say hi without commas.",
    ...                  instruction_id_list=["punctuation:no_comma"], kwargs=[{}])
    >>> score_ifeval([p], ["Hi there"])["prompt_level_strict_acc"]
    1.0
"""
