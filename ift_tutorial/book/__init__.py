"""What the book's notebooks use besides the pipeline: setup, figures and Colab.

* :mod:`~ift_tutorial.book.notebook`: every chapter's setup cell (preset, machine, seed,
  edition) and ``glue`` for numbers in the prose;
* :mod:`~ift_tutorial.book.colab`: runs on Google Drive, the tested libraries, Colab's torch;
* :mod:`~ift_tutorial.book.plots`: figures of training runs (loss, before and after);
* :mod:`~ift_tutorial.book.diagrams`: the book's diagrams, drawn by code;
* :mod:`~ift_tutorial.book.diagrams_blocks`: Llama's block beside OLMo 2's (chapter 4);
* :mod:`~ift_tutorial.book.plots_memory`: what gradient checkpointing keeps and recomputes;
* :mod:`~ift_tutorial.book.plots_data`: the data path, template to padded batch (chapter 5);
* :mod:`~ift_tutorial.book.tables`: tables with one look in every chapter, numbers for
  people, headers in the edition's language;
* :mod:`~ift_tutorial.book.printouts`: a config, a run folder, a function or a token list
  as a short printout of what matters;
* :mod:`~ift_tutorial.book.stages`: the stages that make a chat model (chapter 1);
* :mod:`~ift_tutorial.book.fonts`: Chinese text in figures drawn with real glyphs.

The edition and its labels (:mod:`ift_tutorial.i18n`) and number formatting
(:mod:`ift_tutorial.formatting`) sit at the top of the package, because every output
uses them, the pipeline's reports included.
"""
