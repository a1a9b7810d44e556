"""What every chapter notebook runs first: pick the preset, describe the machine, seed.

A chapter's setup cell ends with ``PRESET = setup_notebook(default="tiny")``. The
reader switches the whole book to a 7B model by setting one environment variable,
``IFT_PRESET`` (for example ``IFT_PRESET=qwen2.5-7b``), before starting the kernel;
the code of the chapters stays the same.
"""

from __future__ import annotations

import random
import sys

import numpy as np
import torch

from . import __version__
from .config import ExperimentConfig, available_presets, load_config, preset_from_env
from .errors import UserFacingError
from .hardware import describe_hardware
from .paths import looks_like_local_path

#: Printed on Colab when a 7B preset finds no GPU.
COLAB_GPU_HELP = (
    "This preset needs a GPU. In Colab: Runtime > Change runtime type > "
    "Hardware accelerator: T4 GPU > Save, then run the notebook again from the top."
)

#: Matplotlib settings shared by every figure of the book.
PLOT_STYLE: dict[str, object] = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 11,
}


def in_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` module is loaded there)."""
    return "google.colab" in sys.modules


def needs_gpu(config: ExperimentConfig) -> bool:
    """True for presets whose base model comes from the hub (the 7B presets).

    The tiny preset points at a folder shipped with the project and runs on a CPU;
    a hub id means a multi-gigabyte model that only a CUDA GPU trains in useful time.
    """
    return not looks_like_local_path(config.model.name_or_path)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a chapter reruns the same."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def set_plot_style() -> None:
    """Apply :data:`PLOT_STYLE` to matplotlib (without choosing a backend)."""
    import matplotlib

    matplotlib.rcParams.update(PLOT_STYLE)


def setup_notebook(default: str = "tiny", seed: int = 0) -> str:
    """Choose the preset, print one line about the machine, seed, style the plots.

    Args:
        default: the preset used when ``IFT_PRESET`` is not set.
        seed: seed for ``random``, NumPy and PyTorch.

    Returns:
        The preset name, for ``load_config(PRESET)``.

    Raises:
        UserFacingError: the preset is unknown, or it needs a GPU and there is none
            (on Colab the message says how to switch the runtime to a GPU).
    """
    preset = preset_from_env(default)
    known = available_presets()
    if preset not in known:
        raise UserFacingError(
            f"preset {preset!r} (from IFT_PRESET or the notebook's default) is not one of the "
            f"presets in configs/: {', '.join(known) or 'none found'}"
        )
    print(f"ift-tutorial {__version__} | preset {preset} | {describe_hardware()}")
    if needs_gpu(load_config(preset)) and not torch.cuda.is_available():
        if in_colab():
            print(COLAB_GPU_HELP)
        raise UserFacingError(
            f"preset {preset!r} loads a 7B model and needs a CUDA GPU, but none is available. "
            + (COLAB_GPU_HELP if in_colab() else "Run it on a GPU machine or in Colab, "
               "or unset IFT_PRESET to use the tiny preset on this CPU.")
        )
    seed_everything(seed)
    set_plot_style()
    return preset
