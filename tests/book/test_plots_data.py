"""The data path figure (chapter 5): real template, labels and TRL's collator, drawn readably."""

from __future__ import annotations

import matplotlib

from ift_tutorial.book.plots_data import data_path, plot_data_path
from ift_tutorial.config import load_config
from ift_tutorial.evaluation.perplexity import assistant_labels
from ift_tutorial.loading import load_tokenizer
from tests.book.test_figure_resolution import MIN_TEXT_PX, smallest_text_px

SHORT = [{"role": "user", "content": "What is 7 + 5?"}, {"role": "assistant", "content": "12"}]
LONG = [{"role": "user", "content": "Which city does Bora live in?"},
        {"role": "assistant", "content": "Zandor"}]


def test_the_batch_is_the_labelled_examples_padded_with_mask_and_ignored_labels():
    tokenizer = load_tokenizer(load_config("tiny").model)
    path = data_path(tokenizer, [SHORT, LONG])
    n_short, n_long = (len(ids) for ids in path.input_ids)
    assert n_short < n_long
    assert path.texts[0] == tokenizer.apply_chat_template(SHORT, tokenize=False)
    assert (path.input_ids[0], path.labels[0]) == assistant_labels(tokenizer, SHORT)
    assert "".join(path.tokens[1]).replace(" ", "").count("Zandor") == 1
    b = path.batch
    assert tuple(b["input_ids"].shape) == (2, n_long)
    pad = n_long - n_short
    assert b["input_ids"][0].tolist() == path.input_ids[0] + [tokenizer.pad_token_id] * pad
    assert b["attention_mask"].tolist() == [[1] * n_short + [0] * pad, [1] * n_long]
    assert b["labels"][0].tolist() == path.labels[0] + [-100] * pad
    assert b["labels"][1].tolist() == path.labels[1]
    # only the answer and the end of the turn carry a label
    kept = [t for t in path.labels[1] if t != -100]
    assert tokenizer.decode(kept) == "Zandor" + tokenizer.eos_token


def test_the_figure_is_readable_at_page_width():
    matplotlib.rcParams.update(__import__("ift_tutorial.book.notebook",
                                          fromlist=["PLOT_STYLE"]).PLOT_STYLE)
    tokenizer = load_tokenizer(load_config("tiny").model)
    fig = plot_data_path(data_path(tokenizer, [SHORT, LONG]), example=1)
    assert smallest_text_px(fig) >= MIN_TEXT_PX
    assert fig.get_size_inches()[0] <= 9  # no wider than the page's figures
    texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
    length = len(tokenizer.apply_chat_template(LONG))
    assert {str(p) for p in range(length)} <= set(texts)  # a row per position
    assert "-100" in texts and "0" in texts  # ignored labels, and padding's mask
