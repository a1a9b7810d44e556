"""What every chapter notebook runs first: pick the preset, describe the machine, seed.

A chapter's setup cell ends with ``PRESET = setup_notebook(default="tiny")``. The
reader switches the whole book to a 7B model by setting one environment variable,
``IFT_PRESET`` (for example ``IFT_PRESET=qwen2.5-7b``), before starting the kernel;
the code of the chapters stays the same.
"""

from __future__ import annotations

import os
import random
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

import numpy as np
import torch

from .. import __version__
from . import colab
from ..config import ExperimentConfig, available_presets, load_config
from ..errors import UserFacingError
from ..planning.hardware import describe_hardware
from ..i18n import edition, set_edition
from ..paths import is_large_model, preset_from_env, set_active_preset
from ..quiet import silence_known_messages
from ..training import provenance

#: Printed on Colab when a 7B preset finds no GPU.
COLAB_GPU_HELP = (
    "This preset needs a GPU. In Colab: Runtime > Change runtime type > "
    "Hardware accelerator: T4 GPU > Save, then run the notebook again from the top."
)

#: Matplotlib settings shared by every figure of the book. A page is about 800 px wide: a
#: figure up to 8 inches wide is shown at (nearly) its own size, so 10-point text reads as
#: 13 px. Figures are shown as SVG (:func:`use_svg_figures`); a PNG is saved at 200 dpi,
#: twice a screen's, so that it stays sharp on a high-density display.
PLOT_STYLE: dict[str, object] = {
    "figure.figsize": (7.0, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "svg.fonttype": "path",  # text as outlines: Chinese labels need no font on the reader's side
    "svg.hashsalt": "ift-tutorial",  # the same figure gives the same SVG in every build
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
}


#: The libraries of the fine-tuning stack, and what each one does in this book.
STACK: dict[str, str] = {
    "torch": "tensors, autograd, optimizers: the arithmetic of training",
    "transformers": "model architectures, tokenizers, chat templates, loading weights",
    "bitsandbytes": "4-bit NF4 weights and their matmuls (the Q of QLoRA), 8-bit optimizers",
    "peft": "LoRA adapters: attach, train, save, load, merge",
    "trl": "SFTTrainer: chat-formatted data, loss on the answers only",
    "accelerate": "device placement, mixed precision, launching on several GPUs",
    "datasets": "reading and mapping instruction data",
}


@dataclass(frozen=True)
class Requirement:
    """One declared dependency of the package and what is installed."""

    name: str
    specifier: str  # e.g. ">=4.56"
    installed: str | None  # None: not installed
    satisfied: bool


def library_versions(names: Iterable[str] = STACK) -> dict[str, str | None]:
    """Installed version of each distribution (the :data:`STACK` by default), None where
    missing (nothing is imported); a run's metrics.json records the same
    (:func:`ift_tutorial.training.provenance.run_versions`)."""
    return provenance.library_versions(names)


def check_requirements(distribution: str = "ift-tutorial") -> list[Requirement]:
    """Compare the package's declared dependencies with what is installed.

    Only unconditional requirements are checked (extras such as ``[dev]`` are skipped).
    """
    from packaging.requirements import Requirement as _Req

    result = []
    for line in metadata.requires(distribution) or []:
        req = _Req(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        installed = library_versions([req.name])[req.name]
        ok = installed is not None and req.specifier.contains(installed, prereleases=True)
        result.append(Requirement(req.name, str(req.specifier), installed, ok))
    return result


def in_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` module is loaded there)."""
    return "google.colab" in sys.modules


def needs_gpu(config: ExperimentConfig) -> bool:
    """True for a 7B-scale base model: a hub id, or a local folder of one.

    The tiny preset points at a folder shipped with the project and runs on a CPU; a
    multi-gigabyte model, from the hub or downloaded (ModelScope) into a local folder,
    only trains in useful time on a CUDA GPU (:func:`ift_tutorial.paths.is_large_model`).
    """
    return is_large_model(config.model.name_or_path)


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) so a chapter reruns the same."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def set_plot_style(lang: str = "en") -> str | None:
    """Apply :data:`PLOT_STYLE` to matplotlib (without choosing a backend), with a CJK
    font as fallback for Chinese text; returns that font (None: none installed).

    Both editions get the fallback (an English figure may show Chinese tokens). For the
    Chinese edition (``lang="zh"``, every label is Chinese) a missing CJK font is said at
    once, with one :class:`ift_tutorial.book.fonts.MissingCJKFontWarning` naming what to install.
    """
    import matplotlib

    from .fonts import INSTALL_HINT, MissingCJKFontWarning, use_cjk_fallback

    matplotlib.rcParams.update(PLOT_STYLE)
    font = use_cjk_fallback(matplotlib.rcParams)
    if font is None and lang == "zh":
        warnings.warn(MissingCJKFontWarning(
            "the Chinese edition labels its figures in Chinese, but no CJK font was found, so "
            f"they would be drawn as boxes: {INSTALL_HINT}"), stacklevel=2)
    return font


def use_svg_figures() -> bool:
    """Show this kernel's inline figures as SVG: sharp at any zoom and on any screen.

    Jupyter Book embeds what the notebook shows, so no chapter needs ``%config
    InlineBackend.figure_formats``. Outside an IPython kernel nothing changes.

    Returns:
        True when the inline backend was set to SVG.
    """
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    if get_ipython() is None:
        return False
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # an IPython without the inline backend: its own default stays
        return False
    set_matplotlib_formats("svg", metadata={"Date": None})  # no date: the same bytes each build
    return True


def quiet_progress_bars() -> None:
    """Hide the model-loading progress bars of ``transformers`` and the hub.

    For the tiny preset, loading takes a fraction of a second and the bars would only
    clutter the book's pages. Set before ``transformers`` is imported (the setup cell
    comes first); an explicit ``HF_HUB_DISABLE_PROGRESS_BARS`` wins.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def setup_notebook(default: str = "tiny", seed: int = 0, runs_on_drive: bool = True) -> str:
    """Choose the preset, print one line about the machine, seed, style the plots.

    The edition (English, or Chinese for the notebooks in ``book/zh/chapters``) is decided
    here once (:func:`ift_tutorial.i18n.edition`; ``IFT_LANG=zh`` or ``en`` wins) and
    kept for the kernel's life, so every figure label of the chapter
    (:func:`ift_tutorial.i18n.t`) is in that edition's language, and the Chinese edition
    draws them with a CJK font.

    Args:
        default: the preset used when ``IFT_PRESET`` is not set (the setup cell's form field).
        seed: seed for ``random``, NumPy and PyTorch.
        runs_on_drive: on Colab, a 7B preset's runs go to Google Drive
            (:func:`ift_tutorial.book.colab.use_drive_for_runs`): chapter 8 reads chapter
            7's adapter, and a Colab machine forgets its files when the session ends. The
            tiny preset's runs take minutes and stay on the machine; off Colab nothing changes.

    Under ``IFT_REHEARSAL=1`` a 7B preset runs without a GPU, as a rehearsal
    (:mod:`ift_tutorial.rehearsal`), and a line says so.

    Returns:
        The preset name, for ``load_config(PRESET)``.

    Raises:
        UserFacingError: the preset is unknown, or it needs a GPU and there is none
            (on Colab the message says how to switch the runtime to a GPU), or ``IFT_LANG``
            is neither ``en`` nor ``zh``.
    """
    lang = edition()  # first: a bad IFT_LANG fails before anything is printed
    set_edition(lang)  # later calls are cheap and give the same answer
    preset = preset_from_env(default)
    known = available_presets()
    if preset not in known:
        raise UserFacingError(
            f"preset {preset!r} (from IFT_PRESET or the notebook's default) is not one of the "
            f"presets in configs/: {', '.join(known) or 'none found'}"
        )
    print(f"ift-tutorial {__version__} | preset {preset} | {describe_hardware()}")
    if in_colab():
        colab.check_torch()  # Colab's own CUDA torch is kept: only its range is checked
    set_active_preset(preset)  # IFT_MODEL_PATH, if set, is this preset's model folder
    config = load_config(preset)  # under IFT_REHEARSAL=1 this prints the rehearsal line
    big, rehearsing = needs_gpu(config), config.rehearsal
    if big and not rehearsing and not torch.cuda.is_available():
        if in_colab():
            print(COLAB_GPU_HELP)
        raise UserFacingError(
            f"preset {preset!r} loads a 7B model and needs a CUDA GPU, but none is available. "
            + (COLAB_GPU_HELP if in_colab() else "Run it on a GPU machine or in Colab, "
               "or choose the tiny preset (unset IFT_PRESET, PRESET = \"tiny\" in the setup cell) "
               "to run on this CPU.")
        )
    if runs_on_drive and big and in_colab():
        colab.use_drive_for_runs()
    if not big or rehearsing:
        quiet_progress_bars()  # a 7B preset keeps them: its first run downloads ~15 GB
    # Without ipywidgets, tqdm draws text bars and warns about it on import: cosmetic.
    warnings.filterwarnings("ignore", message="IProgress not found")
    silence_known_messages()  # before a chapter imports bitsandbytes or PEFT itself
    seed_everything(seed)
    set_plot_style(lang)
    use_svg_figures()
    return preset


#: The mimetype prefix of values stored for the book but not shown (myst-nb's ``glue``).
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, value: object, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's prose: ``{glue:text}`name```.

    The same output as ``myst_nb.glue``, without needing myst-nb (not installed on
    Colab). A string is stored as it is, so ``glue("ratio", "9.1×")`` inserts
    ``9.1×`` (myst-nb would insert its ``repr``, quotes included); other values
    (numbers, figures) go through IPython's formatters as in myst-nb, so
    ``{glue:text}`acc:.0%``` and ``{glue:figure}`` work as documented there.
    Nothing is shown in the notebook unless ``display`` is true.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    if isinstance(value, str):
        bundle, metadata = {"text/plain": value}, {}
    else:
        bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
