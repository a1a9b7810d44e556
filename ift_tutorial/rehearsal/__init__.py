"""Rehearsal: a 7B preset's whole code path on a CPU, in seconds (``IFT_REHEARSAL=1``).

A 7B run needs a GPU and a 15 GB download, so without help nothing on a CPU would ever
execute the 7B branches of the command line and the notebooks. A rehearsal runs them with
a shrunk random stand-in of the preset's real architecture and tokenizer.

Rehearsal is applied once, at the edge, where a run's config is made
(:func:`ift_tutorial.config.load_config`, which the command line and the notebooks'
setup cell go through): :func:`~ift_tutorial.rehearsal.preset.rehearse` turns a 7B
preset into an ordinary config: ``model.load_from`` names a local stand-in folder (loaded
instead of ``model.name_or_path``, which stays the real hub id), hub data sets read their
local fixtures, the numbers are capped, and ``rehearsal: true`` marks the outputs. No
module below asks whether this is a rehearsal.

* :mod:`~ift_tutorial.rehearsal.preset`: what a rehearsal changes in a preset's config;
* :mod:`~ift_tutorial.rehearsal.standins`: the stand-in tokenizers and models.
"""
