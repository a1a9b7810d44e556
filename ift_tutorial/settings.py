"""The settings of each config section, one dataclass per section of a YAML file.

:mod:`ift_tutorial.config` reads a file into these (and re-exports them); each field's
comment says what it does. ``dpo:`` and ``grpo:`` configure the preference-tuning and
reinforcement-learning steps that start from an SFT adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from .instructions.sources import HubSource


@dataclass
class ModelSettings:
    """Which base model to load and how."""

    name_or_path: str = "data/tiny-llama"  # local folder or hub id
    revision: str | None = None  # pin a hub revision for reproducibility
    load_in_4bit: bool = True  # QLoRA: NF4 base weights through bitsandbytes
    double_quant: bool = True  # quantise the absmax constants too (~0.37 bit/param saved)
    quant_type: str = "nf4"  # "nf4" or "fp4"
    compute_dtype: str = "auto"  # "auto" picks from the hardware; or bf16/fp16/fp32
    max_length: int = 256  # tokens per example after the chat template
    chat_template: str | None = None  # a .jinja file, for base tokenizers that have none
    trust_remote_code: bool = False  # never run code from a hub repo unless asked
    allow_pickle: bool = False  # refuse .bin/.pt weights unless asked (safetensors only)
    gated: bool = False  # the hub repo needs an accepted licence and a token
    notes: str = ""  # shown to the reader, e.g. how to get access to a gated model
    # A local folder whose weights and tokenizer are loaded instead of name_or_path's, which
    # stays the model's name (plans and reports use it); a rehearsal's stand-in goes here.
    load_from: str | None = None
    # A GPU (t4, l4, a100-40gb...) to charge this model's real memory against while it runs
    # elsewhere (ift_tutorial.planning.ledger); a rehearsal sets t4, the presets' GPU.
    ledger_gpu: str | None = None
    # Decode at most this many new tokens per answer, whatever a caller asks: a rehearsal's
    # random stand-in never stops (a ledger still charges the length that was asked for).
    max_new_tokens_cap: int | None = None
    # The model maker's own instruction-tuned model (hub id), evaluated beside the tuned one
    # as a reference point (chapter 8); a rehearsal loads its stand-in from the _load_from folder.
    instruct_reference: str | None = None
    instruct_reference_load_from: str | None = None


@dataclass
class LoraSettings:
    """LoRA adapter settings, mapped onto ``peft.LoraConfig``."""

    r: int = 16  # rank of the update B @ A
    alpha: int = 32  # scaling numerator: the update is scaled by alpha / r
    dropout: float = 0.05  # dropout on the adapter's input
    target_modules: str | list[str] = "all-linear"  # which Linear layers get adapters
    use_rslora: bool = False  # scale by alpha / sqrt(r) instead (rank-stabilised LoRA)
    bias: str = "none"


@dataclass
class DataSettings:
    """Where the instruction data comes from and how it is prepared."""

    # A data set is a file path, or a hub source mapping ({hub: ..., revision: ..., columns:
    # ..., fixture: ...}, see ift_tutorial.instructions.sources): read from its fixture when offline.
    train: str | HubSource = "data/tasks/train.jsonl"  # local file, hub id or hub source
    train_split: str = "train"  # split name when ``train`` is a bare hub id
    eval_exact_match: str | None = "data/tasks/heldout.jsonl"  # verifiable held-out set
    eval_perplexity: str | HubSource | None = "data/instructions/heldout.jsonl"  # held-out chat data
    eval_ifeval: str | HubSource | list[str | HubSource] | None = None  # IFEval-format prompt sets
    eval_ifeval_examples: int | None = None  # prompts per IFEval set (seeded subset; None: all)
    eval_ifeval_max_new_tokens: int = 256  # answer length for IFEval prompts
    eval_gsm8k: str | HubSource | None = None  # GSM8K-format problems, answered zero-shot
    eval_gsm8k_examples: int | None = None  # problems (seeded subset; None: all)
    eval_gsm8k_max_new_tokens: int = 256  # room for the worked solution and '#### N'
    # General ability (forgetting): multiple-choice sets, scored by likelihood
    # (ift_tutorial.evaluation.multiple_choice); format "letters" (MMLU's) or "cloze"
    eval_multiple_choice: str | HubSource | list[str | HubSource] | None = None
    eval_multiple_choice_examples: int | None = None  # questions per set (seeded subset)
    eval_multiple_choice_format: str = "letters"
    # Refusals of harmful requests and of harmless look-alikes (ift_tutorial.evaluation.refusal)
    eval_refusal: str | None = None
    eval_refusal_max_new_tokens: int = 48
    eval_seed: int = 0  # seed of the evaluation subsets
    max_eval_examples: int | None = None  # cap every held-out set (None: all)
    deduplicate: bool = True  # drop exact duplicate conversations (counted, reported)
    # drop conversations whose word 5-shingles overlap an earlier one's this much (Jaccard,
    # MinHash; counted, reported); None: off. ift_tutorial.instructions.contamination
    near_duplicate_threshold: float | None = 0.8
    # training rows sharing a 13-gram with an evaluation set: "drop" (counted) or "report"
    decontaminate: str = "drop"
    system_prompt: str | None = None  # added to conversations that have none


@dataclass
class TrainingSettings:
    """Training loop settings, mapped onto ``trl.SFTConfig``."""

    max_steps: int = 600
    per_device_train_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-3
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = True
    optim: str = "auto"  # "auto": paged 8-bit AdamW on GPU, AdamW on CPU
    save_steps: int = 200  # checkpoint every N steps (resume picks the last one)
    save_total_limit: int = 2
    logging_steps: int = 10
    seed: int = 0
    num_threads: int | None = None  # CPU threads for torch (None: leave as is)
    max_new_tokens: int = 32  # generation length for exact-match evaluation
    eval_batch_size: int = 32
    # Validation loss during training (ift_tutorial.training.validation): the loss on
    # data.eval_perplexity's held-out conversations every eval_steps steps (None: off),
    # on eval_examples of them (a seeded subset; None: all).
    eval_steps: int | None = None
    eval_examples: int | None = None

@dataclass
class DPOSettings:
    """Direct preference optimisation after SFT, mapped onto ``trl.DPOConfig``."""

    # Preference pairs (prompt/chosen/rejected, conversational): a file or a hub source.
    train: str | HubSource | None = "data/preferences/train.jsonl"
    eval: str | HubSource | None = "data/preferences/heldout.jsonl"  # held-out pairs
    beta: float = 0.1  # strength of the pull towards the reference (the SFT model)
    loss_type: str = "sigmoid"  # the DPO paper's loss
    learning_rate: float = 5e-4
    max_steps: int = 60
    per_device_train_batch_size: int = 16
    gradient_accumulation_steps: int = 1
    max_length: int = 128  # tokens of prompt + answer
    lr_scheduler_type: str = "constant"
    warmup_ratio: float = 0.0
    logging_steps: int = 10
    save_steps: int = 60
    save_total_limit: int = 1
    seed: int = 0
    max_eval_examples: int | None = None  # cap the held-out pairs (None: all)


@dataclass
class GRPOSettings:
    """Group relative policy optimisation with a verifiable reward, mapped onto ``trl.GRPOConfig``."""

    train: str | HubSource | None = "data/tasks/train.jsonl"  # prompts with a checkable answer
    eval: str | HubSource | None = "data/tasks/heldout.jsonl"
    # Which scorer is the reward: "exact_match" (tiny-world tasks, the answer then end-of-turn)
    # or "gsm8k" (the last number of a worked answer); ift_tutorial.training.verifiable.
    reward: str = "exact_match"
    task: str | None = "addition"  # keep only rows of this task (the rows' "task" field)
    num_generations: int = 8  # answers sampled per prompt: the group a reward is compared in
    max_completion_length: int = 24
    temperature: float = 1.0
    beta: float = 0.0  # KL penalty towards the reference (0: none, no reference pass)
    learning_rate: float = 5e-4
    max_steps: int = 40
    per_device_train_batch_size: int = 16
    logging_steps: int = 10
    save_steps: int = 40
    seed: int = 0
    max_eval_examples: int | None = None  # cap the held-out prompts (None: all)
    num_threads: int | None = None  # CPU threads for torch (None: training.num_threads)
