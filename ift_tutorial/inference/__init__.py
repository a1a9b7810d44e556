"""Using a tuned model (chapter 8): answering prompts and merging the adapter.

* :mod:`~ift_tutorial.inference.generation`: loading for inference, the stop tokens, greedy
  decoding through the chat template, ``generate`` and ``chat``;
* :mod:`~ift_tutorial.inference.merging`: merging a LoRA adapter into its base, shard by shard,
  and checking the merged tensors.

The evaluation suites (:mod:`ift_tutorial.evaluation`) decode through this package; it
imports nothing from them.
"""
