"""Training: QLoRA instruction tuning and what keeps a run safe (chapters 7 and 10).

* :mod:`~ift_tutorial.training.trainer`: ``train()``, TRL's ``SFTTrainer`` on a 4-bit base
  with a PEFT LoRA adapter;
* :mod:`~ift_tutorial.training.grpo`: ``grpo()``, TRL's ``GRPOTrainer`` on an SFT adapter with
  a verifiable reward (chapter 9); :mod:`~ift_tutorial.training.verifiable`: its tasks,
  whose reward is the evaluation's verdict; :mod:`~ift_tutorial.training.adapter_runs`: a
  run that starts from an SFT adapter; :mod:`~ift_tutorial.training.grpo_cli` and
  :mod:`~ift_tutorial.training.dpo_cli`: ``ift-tutorial grpo`` and ``dpo``, whose shared
  options and checks live in :mod:`~ift_tutorial.training.adapter_cli`;
* :mod:`~ift_tutorial.training.checkpoints`: crash-safe checkpoints and resume;
* :mod:`~ift_tutorial.training.run_config`: what shapes a run's weights, recorded and checked on resume;
* :mod:`~ift_tutorial.training.runlock`: one live run per output folder, no orphan ranks;
* :mod:`~ift_tutorial.training.distributed`: the same command on one device or N processes;
* :mod:`~ift_tutorial.training.devices`: inputs on the model's device;
* :mod:`~ift_tutorial.training.progress`: live bars, or one summary line when nobody watches;
* :mod:`~ift_tutorial.training.finished_runs`: finished small runs reused by the book's builds;
* :mod:`~ift_tutorial.training.provenance`: the adapter's digest and the library versions
  that a run's ``metrics.json`` records.
"""
