"""Loading a base model for QLoRA: 4-bit NF4 weights, 16-bit everything else.

The same function loads the tiny preset on a CPU and a 7B model on a Colab GPU;
only the config differs. Secure defaults: ``trust_remote_code=False`` and
safetensors only, unless the config asks otherwise.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .config import ModelSettings
from .errors import UserFacingError
from .planning.hardware import detect_precision
from .paths import looks_like_local_path, resolve_path
from .training.progress import quiet_library_progress
from .quiet import silence_known_messages

logger = logging.getLogger(__name__)

#: The attribute of a loaded model that holds ``model.max_new_tokens_cap``, if set.
DECODE_CAP = "_ift_max_new_tokens_cap"


class PickleWeightsError(UserFacingError):
    """A model folder holds only pickle weights, and the config did not allow them."""


def resolve_model_path(settings: ModelSettings) -> str:
    """The folder or hub id to load: ``model.load_from`` if set, else ``model.name_or_path``.

    A project-relative folder becomes an absolute path; a hub id stays as it is.
    """
    name = settings.load_from or settings.name_or_path
    if looks_like_local_path(name):
        path = resolve_path(name)
        if not path.is_dir():
            raise FileNotFoundError(f"model folder {path} does not exist (model.name_or_path)")
        return str(path)
    return name


def check_local_weights(path: str, allow_pickle: bool) -> None:
    """Refuse a local folder whose weights are pickles (``.bin``/``.pt``) unless allowed.

    Pickle files can run arbitrary code when loaded; safetensors cannot.
    """
    folder = Path(path)
    if not folder.is_dir() or allow_pickle:
        return
    has_safetensors = any(folder.glob("*.safetensors"))
    pickles = [p.name for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth", ".ckpt"}]
    if pickles and not has_safetensors:
        raise PickleWeightsError(
            f"{folder}: only pickle weights found ({', '.join(sorted(pickles))}); pickle can run "
            "arbitrary code when loaded. Convert them to safetensors, or set "
            "model.allow_pickle=true if you trust the source."
        )


def quantization_config(settings: ModelSettings, compute_dtype: torch.dtype) -> BitsAndBytesConfig:
    """The QLoRA recipe: NF4 storage, double quantisation, 16-bit (or fp32) compute."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=settings.quant_type,
        bnb_4bit_use_double_quant=settings.double_quant,
        bnb_4bit_compute_dtype=compute_dtype,
        # Keep the storage dtype equal to the model dtype so that FSDP can shard the
        # packed 4-bit weights together with the 16-bit ones.
        bnb_4bit_quant_storage=compute_dtype if compute_dtype != torch.float32 else torch.uint8,
    )


def disable_cpu_weight_repacking(model: torch.nn.Module) -> int:
    """Stop bitsandbytes from repacking 4-bit weights for CPU inference.

    On CPUs with AVX512-BF16, an eval forward pass under ``no_grad`` repacks each
    ``Linear4bit`` weight into a layout whose kernel has no autograd support: after
    such a pass no gradient flows through the frozen layers and LoRA stops learning,
    silently. Turning the fast path off keeps training correct on every CPU.

    Returns:
        How many modules it switched off: 0 on a CPU without AVX512-BF16 (or when
        called twice), where bitsandbytes never enabled the fast path.

    Example:
        >>> import bitsandbytes as bnb
        >>> layer = bnb.nn.Linear4bit(64, 64)
        >>> layer.support_avx512bf16_for_cpu = True  # as on a CPU with AVX512-BF16
        >>> disable_cpu_weight_repacking(layer), disable_cpu_weight_repacking(layer)
        (1, 0)
    """
    n = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n


def quiet_libraries() -> None:
    """Before the libraries load anything: silence their known-harmless messages
    (:mod:`ift_tutorial.quiet`) and, when nobody watches, their progress bars
    (:mod:`ift_tutorial.training.progress`)."""
    silence_known_messages()
    quiet_library_progress()


def check_hub_access(settings: ModelSettings, path: str) -> None:
    """A gated hub model needs a token; say so before a long download fails.

    The token itself is never printed or logged: we only test whether one is set.
    """
    if not settings.gated or Path(path).is_dir():
        return
    from huggingface_hub import get_token

    if get_token() is None:
        raise UserFacingError(
            f"{settings.name_or_path} is gated and no hub token is set. "
            + (settings.notes or "Accept its licence on the model page, then set HF_TOKEN.")
        )


def load_tokenizer(settings: ModelSettings) -> PreTrainedTokenizerBase:
    """Load the tokenizer with a chat template and a pad token (EOS is reused if needed).

    Base tokenizers often ship no chat template (OLMo-2-7B), or one that does not
    train (Qwen2.5-7B: no generation markers; Llama-3.1-8B: untrained chat tokens);
    their presets name one in ``model.chat_template``.

    Example:
        >>> from ift_tutorial import load_config, load_tokenizer
        >>> tokenizer = load_tokenizer(load_config("tiny").model)
        >>> tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)[:10]
        '<s><|user|'
    """
    quiet_libraries()
    path = resolve_model_path(settings)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, revision=settings.revision, trust_remote_code=settings.trust_remote_code
        )
    except OSError as err:  # no tokenizer files, no network for a hub id, ...
        raise UserFacingError(f"cannot load the tokenizer of {settings.name_or_path!r}: {err}") from err
    if settings.chat_template:
        template = resolve_path(settings.chat_template)
        if not template.is_file():
            raise UserFacingError(f"chat template {template} does not exist (model.chat_template)")
        tokenizer.chat_template = template.read_text(encoding="utf-8")
    elif tokenizer.chat_template is None:
        raise UserFacingError(
            f"the tokenizer of {settings.name_or_path!r} has no chat template: set model.chat_template "
            "to a .jinja file (e.g. the package's configs/chat_templates/llama2_inst.jinja)"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    settings: ModelSettings,
    *,
    load_in_4bit: bool | None = None,
    dtype: torch.dtype | None = None,
    device_map: str | dict | None = "auto",
) -> PreTrainedModel:
    """Load the base causal LM, in 4-bit NF4 by default.

    Args:
        settings: the ``model`` section of a config.
        load_in_4bit: override ``settings.load_in_4bit`` (merging reloads in 16 bits).
        dtype: dtype of the non-quantised parts; default: the hardware's compute dtype.
        device_map: where to place the weights. "auto" puts a single-process run on
            GPU 0 (or the CPU); under torchrun each rank uses its own device.

    Example:
        >>> from ift_tutorial import load_config, load_model
        >>> model = load_model(load_config("tiny").model)  # 4-bit NF4 on this machine's device
        >>> type(model).__name__
        'LlamaForCausalLM'
    """
    quiet_libraries()
    path = resolve_model_path(settings)
    check_local_weights(path, settings.allow_pickle)
    check_hub_access(settings, path)
    precision = detect_precision(settings.compute_dtype)
    dtype = dtype or precision.compute_dtype
    four_bit = settings.load_in_4bit if load_in_4bit is None else load_in_4bit
    kwargs: dict = dict(
        revision=settings.revision,
        dtype=dtype,
        trust_remote_code=settings.trust_remote_code,
        use_safetensors=None if settings.allow_pickle else True,
    )
    if four_bit:
        kwargs["quantization_config"] = quantization_config(settings, dtype)
    if device_map == "auto":
        device_map = default_device_map()
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as err:  # missing weights, no network for a hub id, ...
        raise UserFacingError(f"cannot load the model {settings.name_or_path!r}: {err}") from err
    if four_bit:
        disable_cpu_weight_repacking(model)
    if settings.max_new_tokens_cap:  # read by ift_tutorial.inference.generation
        setattr(model, DECODE_CAP, settings.max_new_tokens_cap)
    if settings.ledger_gpu:  # charge what the real model weighs on that GPU
        from .planning.ledger import track_model

        track_model(model, settings, four_bit)
    return model


def default_device_map() -> dict[str, int | str]:
    """One process, one device: the whole model on this rank's GPU, or on the CPU."""
    if torch.cuda.is_available():
        return {"": int(os.environ.get("LOCAL_RANK", 0))}
    return {"": "cpu"}

