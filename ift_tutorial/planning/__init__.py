"""Planning a run before it starts: architectures, hardware, and where the GPU memory goes.

Modules:

- ``architectures``: the configs of the models the presets name, known without a download.
- ``hardware``: what this machine offers, and the precision a run picks from it.
- ``sharding``: what each multi-GPU strategy (DDP, ZeRO, FSDP) splits across the GPUs.
- ``parameters``: a model's parameters counted as QLoRA stores them (4-bit, 16-bit, LoRA).
- ``memory``: the memory planner, GPU memory component by component
  (``ift-tutorial plan-memory``).
- ``measure``: the bytes a model and its optimizer actually hold, by the planner's components.
- ``dry_run``: a preset's real architecture with random weights, a few real training
  steps, measured beside the plan (``ift-tutorial dry-run``).

The figure of a plan is :func:`ift_tutorial.book.plots.plot_plan`.
"""
