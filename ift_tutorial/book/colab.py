"""Running the book on Google Colab: runs kept on Google Drive, the tested libraries, Colab's torch.

Every chapter's setup cell does the Colab part in three steps:

1. it clones the repository and installs the package with the versions this project
   was tested with (``constraints-colab.txt``: the Hugging Face stack and
   bitsandbytes), pinning torch to the version Colab already has: Colab's CUDA build
   stays, only :func:`check_torch` checks that it is in :data:`TORCH_RANGE`;
2. a form field picks the preset (``IFT_PRESET`` in the environment wins);
3. a check box sends runs to Google Drive (:func:`use_drive_for_runs`), so that
   chapter 8 finds chapter 7's adapter after Colab has recycled the machine.

A Colab session keeps nothing: a run saved under ``/content`` is gone when the
runtime ends, which is why chapter 8 looks for chapter 7's adapter with
:func:`find_run_adapter` and says how to get one when it is missing.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

from ..errors import UserFacingError

#: Where Colab mounts Google Drive, and the folder of the runs inside it.
DRIVE_MOUNT = Path("/content/drive")
DRIVE_RUNS = "MyDrive/ift-tutorial/runs"
#: Large outputs (merged models: 15 GB at 7B) stay on the VM's disk: Drive's free quota is 15 GB.
LOCAL_RUNS = Path("/content/runs")
#: The torch versions the package supports: the lower bound of pyproject.toml, below the next major.
TORCH_RANGE = ">=2.4,<3"
#: The file of tested versions that the setup cell installs with (repository root).
CONSTRAINTS_FILE = "constraints-colab.txt"
#: Notebook metadata that makes Colab open a chapter on a GPU runtime.
GPU_NOTEBOOK_METADATA: dict[str, object] = {"accelerator": "GPU", "colab": {"gpuType": "T4"}}


def in_colab() -> bool:
    """True inside a Google Colab runtime (its ``google.colab`` module is loaded there)."""
    return "google.colab" in sys.modules


def check_torch(installed: str | None = None, allowed: str = TORCH_RANGE) -> str:
    """Check that the installed torch is in ``allowed``; returns its version.

    On Colab the setup cell keeps Colab's own CUDA build of torch (a ``pip install``
    of torch would replace it with another multi-GB build); this is the only check.

    Raises:
        UserFacingError: torch is missing or outside the range.

    Example:
        >>> check_torch("2.8.0+cu126")
        '2.8.0+cu126'
    """
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    if installed is None:
        try:
            installed = metadata.version("torch")
        except metadata.PackageNotFoundError:
            raise UserFacingError(f"torch is not installed; this book needs torch{allowed}") from None
    if not SpecifierSet(allowed).contains(Version(installed).base_version):
        raise UserFacingError(
            f"torch {installed} is outside the tested range torch{allowed}. On Colab: Runtime > "
            "Disconnect and delete runtime, then run the notebook again (a fresh runtime has "
            "Colab's current torch); elsewhere install a torch in that range.")
    return installed


def use_drive_for_runs(mount_point: Path = DRIVE_MOUNT) -> Path | None:
    """On Colab: mount Google Drive and send runs to ``MyDrive/ift-tutorial/runs``.

    Sets ``IFT_RUNS_DIR`` (read by :func:`ift_tutorial.paths.runs_dir`) unless it is
    set already, and ``IFT_LOCAL_RUNS_DIR`` to the VM's disk for outputs too large for
    Drive's free quota (merged models). Off Colab it only says where runs go.

    Returns:
        The runs folder on Drive, or None off Colab.
    """
    if not in_colab():
        print("runs stay on this machine (Google Drive is offered on Colab only; "
              "IFT_RUNS_DIR chooses the folder)")
        return None
    from google.colab import drive  # type: ignore[import-not-found]

    drive.mount(str(mount_point))
    runs = Path(os.environ.get("IFT_RUNS_DIR") or mount_point / DRIVE_RUNS)
    runs.mkdir(parents=True, exist_ok=True)
    os.environ["IFT_RUNS_DIR"] = str(runs)
    os.environ.setdefault("IFT_LOCAL_RUNS_DIR", str(LOCAL_RUNS))
    shown = runs.relative_to(mount_point) if mount_point in runs.parents else runs.name
    print(f"runs go to Google Drive: {shown} (kept when the Colab session ends); "
          "merged models to the VM's disk")
    return runs


def find_run_adapter(run_name: str, made_by: str = "chapter 7", config: object | None = None) -> Path:
    """The adapter folder of a training run in :func:`~ift_tutorial.paths.runs_dir`.

    Args:
        run_name: the run's folder name, e.g. ``"ch07-qwen2.5-7b"``.
        made_by: what writes that run, for the message.
        config: the run's config (a rehearsal's runs are in their own folder).

    Raises:
        UserFacingError: there is no adapter; the message says how to get one.
    """
    from ..paths import display_path, runs_dir

    adapter = runs_dir(config) / run_name / "adapter"
    if (adapter / "adapter_config.json").is_file():
        return adapter
    raise UserFacingError(
        f"no adapter at {display_path(adapter)}: run {made_by} with the same preset first (it "
        "saves the adapter there), or copy a run's adapter/ folder there. On Colab, keep "
        "RUNS_ON_DRIVE ticked (the default) in the setup cells of both chapters: a Colab machine "
        "forgets its files when the session ends.")
