"""Using a tuned model (chapters 8 and 10): answering prompts, merging the adapter, exporting.

* :mod:`~ift_tutorial.inference.generation`: loading for inference, the stop tokens, greedy
  decoding through the chat template, ``generate`` and ``chat``;
* :mod:`~ift_tutorial.inference.merging`: merging a LoRA adapter into its base, shard by shard,
  and checking the merged tensors;
* shipping the tuned model as GGUF for llama.cpp and Ollama (chapter 10):
  :mod:`~ift_tutorial.inference.export` (``ift-tutorial export``, its command line in
  :mod:`~ift_tutorial.inference.export_cli`), llama.cpp's own
  :mod:`~ift_tutorial.inference.converter`, the Ollama
  :mod:`~ift_tutorial.inference.modelfile`, and the parity checks,
  :mod:`~ift_tutorial.inference.gguf_checks` (static) and
  :mod:`~ift_tutorial.inference.gguf_live` (llama.cpp running the file).

The evaluation suites (:mod:`ift_tutorial.evaluation`) decode through this package; it
imports nothing from them.
"""
