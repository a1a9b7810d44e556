"""The tiny world: what made the ``tiny`` preset that every chapter runs on a CPU (chapter 1).

* :mod:`~ift_tutorial.tinyworld.corpus`: a made-up bilingual world and the corpus that describes it;
* :mod:`~ift_tutorial.tinyworld.tokenizer`: its byte-level BPE tokenizer and chat template;
* :mod:`~ift_tutorial.tinyworld.tasks`: verifiable questions about the world (train and held-out
  sets) and their exact-match scorer;
* :mod:`~ift_tutorial.tinyworld.pretrain`: pretraining the small Llama in ``data/tiny-llama``
  (``ift-tutorial pretrain``).
"""
