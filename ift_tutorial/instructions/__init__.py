"""Instruction data (chapter 5): from a file or hub dataset to conversations to train on.

Modules, each importing only those listed before it:

- ``sources``: where a data set comes from, a local file or a hub dataset read through a
  column mapping (with a local fixture offline).
- ``formats``: the record formats (messages, sharegpt, alpaca, prompt_completion), their
  detection, and one record normalised into a conversation.
- ``reading``: the file readers (JSONL, JSON, CSV, Parquet, a hub dataset), each record
  with its line or record number.
- ``contamination``: the checks against the evaluation sets a config names (13-gram
  overlap) and the near-duplicate filter (MinHash, ``datasketch``).
- ``dataset``: a whole file loaded and checked (``load_conversations``), filtered with a
  counted :class:`~ift_tutorial.instructions.dataset.DataReport` (``prepare_dataset``,
  ``check_data``), and the ``ift-tutorial check-data`` command.
- ``turns``: multi-turn reasoning data cut into one sample per assistant turn
  (``one_sample_per_turn``), so that every turn is trained with its own reasoning.
"""
