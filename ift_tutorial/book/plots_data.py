"""The data path of a training batch, computed and drawn (chapter 5).

A conversation becomes a training batch in four steps: the chat template writes it as
text, the tokenizer turns the text into token ids, the labels copy the ids where the
assistant speaks and are -100 elsewhere, and the collator pads the examples of a batch
to one length, with an attention mask that is 0 on the padding and labels of -100
there too. :func:`data_path` runs those steps with the real pieces (the tokenizer and
its chat template, the package's :func:`~ift_tutorial.evaluation.perplexity.assistant_labels`,
which agrees with TRL's masking, and TRL's own collator); :func:`plot_data_path` draws
the result, one row per position of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt

from ..i18n import t
from .fonts import family_with_cjk
from .plots import display_token

#: Colours shared with plot_label_mask: orange for a label, grey for -100.
LABEL = ("#f4a261", "#bc6c25")
IGNORED = ("#e9ecef", "#adb5bd")
PAD = "#f8f9fa"
ROW = 0.22  # inches per position


@dataclass
class DataPath:
    """Every step of the data path for a few conversations (B of them, padded to T)."""

    texts: list[str]  # each conversation as the chat template writes it
    tokens: list[list[str]]  # the text of each token
    input_ids: list[list[int]]  # before padding
    labels: list[list[int]]  # -100 except on the assistant's tokens
    batch: dict[str, Any]  # the collator's output: input_ids, attention_mask, labels, (B, T)
    pad_token_id: int


def data_path(tokenizer: Any, conversations: list[list[dict[str, str]]]) -> DataPath:
    """Run conversations through template, tokenizer, labels and TRL's collator.

    Args:
        tokenizer: the preset's tokenizer, with its chat template (``load_tokenizer``).
        conversations: a batch of conversations (lists of role/content messages).

    Returns:
        A :class:`DataPath`; ``batch`` holds (B, T) tensors, T the longest example.
    """
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from ..evaluation.perplexity import assistant_labels

    texts, tokens, ids, labels = [], [], [], []
    for conv in conversations:
        texts.append(tokenizer.apply_chat_template(conv, tokenize=False))
        i, lab = assistant_labels(tokenizer, conv)
        ids.append(i)
        labels.append(lab)
        tokens.append([tokenizer.decode([tok]) for tok in i])
    collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    batch = collator([{"input_ids": i, "labels": lab} for i, lab in zip(ids, labels)])
    return DataPath(texts, tokens, ids, labels, dict(batch), tokenizer.pad_token_id)


def _cell(ax, x: float, y: float, w: float, text: str, colours: tuple[str, str] | None,
          mono: str, grey: bool = False) -> None:
    if colours is not None:
        ax.add_patch(plt.Rectangle((x + 0.03, y - ROW / 2 + 0.02), w - 0.06, ROW - 0.04,
                                   facecolor=colours[0], edgecolor=colours[1], linewidth=0.6))
    ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=9, family=mono,
            color="dimgray" if grey else "black")


def plot_data_path(path: DataPath, example: int = 0):
    """The data path as a table of positions: tokens, ids and labels of one example, then
    the collator's padded batch (ids, attention mask, labels of every example).

    Args:
        path: from :func:`data_path`.
        example: which conversation the first three steps show.

    Returns:
        The matplotlib figure.
    """
    b = path.batch
    n_ex, length = b["input_ids"].shape  # (B, T)
    mono = family_with_cjk("monospace")
    steps = [(0.75, t("position")), (1.3, "① " + t("tokens")), (1.0, "② " + t("token ids")),
             (0.85, "③ " + t("labels"))]
    sub = [(0.62, "ids"), (0.5, "mask"), (0.65, "labels")]
    width = sum(w for w, _ in steps) + 0.45 + n_ex * sum(w for w, _ in sub)
    height = ROW * length + 1.35
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    text = path.texts[example].replace("\n", "⏎")
    ax.text(0.05, height - 0.2, t("chat template:") + " " + text, fontsize=9, family=mono,
            va="center")
    top = height - 0.55
    x = 0.0
    for w, name in steps:
        ax.text(x + w / 2, top, name, ha="center", va="center", fontsize=9, weight="bold")
        x += w
    ax.annotate("", xy=(x + 0.4, top - 0.75), xytext=(x + 0.05, top - 0.75),
                arrowprops=dict(arrowstyle="->", color="dimgray"))
    batch_x = x + 0.45
    ax.text(batch_x + n_ex * sum(w for w, _ in sub) / 2, top,
            "④ " + t("collator: a padded batch"), ha="center", va="center", fontsize=9,
            weight="bold")
    for e in range(n_ex):
        x = batch_x + e * sum(w for w, _ in sub)
        ax.text(x + sum(w for w, _ in sub) / 2, top - 0.25, t("example {n}", n=e + 1),
                ha="center", va="center", fontsize=9)
        for w, name in sub:
            ax.text(x + w / 2, top - 0.48, name, ha="center", va="center", fontsize=9,
                    family=mono)
            x += w
    for pos in range(length):
        y = top - 0.75 - pos * ROW
        labelled = pos < len(path.labels[example]) and path.labels[example][pos] != -100
        x = 0.0
        _cell(ax, x, y, steps[0][0], str(pos), None, mono, grey=True)
        x += steps[0][0]
        if pos < len(path.input_ids[example]):
            _cell(ax, x, y, steps[1][0], display_token(path.tokens[example][pos]),
                  LABEL if labelled else IGNORED, mono)
            _cell(ax, x + steps[1][0], y, steps[2][0], str(path.input_ids[example][pos]),
                  None, mono)
            _cell(ax, x + steps[1][0] + steps[2][0], y, steps[3][0],
                  str(path.labels[example][pos]), LABEL if labelled else IGNORED, mono,
                  grey=not labelled)
        x = batch_x
        for e in range(n_ex):
            mask, label = int(b["attention_mask"][e, pos]), int(b["labels"][e, pos])
            colours = LABEL if label != -100 else IGNORED
            _cell(ax, x, y, sub[0][0], str(int(b["input_ids"][e, pos])),
                  None if mask else (PAD, IGNORED[1]), mono, grey=not mask)
            _cell(ax, x + sub[0][0], y, sub[1][0], str(mask), None, mono, grey=not mask)
            _cell(ax, x + sub[0][0] + sub[1][0], y, sub[2][0], str(label), colours, mono,
                  grey=label == -100)
            x += sum(w for w, _ in sub)
    return fig
