"""ift_tutorial: the companion package of the book *Instruction fine-tuning a 7B LLM with QLoRA*.

Modules follow the chapters: ``attention`` and ``llama`` (chapters 2-4),
``instruction_data`` (chapter 5), ``quantization``, ``lora`` and ``memory``
(chapter 6), ``training`` (chapter 7), ``evaluation``, ``generation`` and
``merging`` (chapter 8), ``distributed`` (chapter 10). ``config``, ``loading``
and ``hardware`` are shared by all of them.
"""

__version__ = "0.1.0"
