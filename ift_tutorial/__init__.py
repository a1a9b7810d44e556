"""ift_tutorial: the companion package of the book *Instruction fine-tuning a 7B LLM with QLoRA*.

Modules follow the chapters:

* chapter 1, the tiny preset's world: ``corpus`` (the made-up bilingual world and its
  pretraining text), ``tokenizer``, ``pretrain``, ``tasks`` (verifiable questions);
* chapters 2-4, attention and the transformer: ``attention``, ``seq2seq`` (a small
  encoder-decoder), ``llama`` (a Llama from scratch), ``architectures`` (7B shapes);
* chapter 5, instruction data: ``instruction_data``;
* chapter 6, QLoRA: ``quantization`` (NF4), ``lora``, ``memory`` (the planner),
  ``dry_run``;
* chapter 7, fine-tuning: ``training``, ``checkpoints``, ``plots``;
* chapter 8, evaluation and use: ``evaluation``, ``generation``, ``merging``;
* chapter 10, scaling out: ``distributed``.

Shared by all of them: ``config`` (YAML presets under ``configs/``), ``loading``
(4-bit loading with secure defaults), ``hardware`` (precision from the GPU),
``paths``, ``errors``, ``notebook`` (the chapters' setup cell) and ``cli``.
"""

__version__ = "0.1.0"
