"""pytest settings for running the chapter notebooks: ``pytest --nbval-lax book/chapters``.

nbval starts each notebook's kernel in the notebook's own folder (``book/chapters``), as the
book build does. The kernel inherits this process's environment, which is set here.
"""

from __future__ import annotations

import os

# No model hub in the notebooks' default path: fail fast instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Nobody watches the cells run: no progress bars, one summary line per training run.
os.environ.setdefault("IFT_QUIET_PROGRESS", "1")
# A kernel draws figures with the inline backend only when MPLBACKEND is unset; with
# MPLBACKEND=Agg (fine for the unit tests) plt.show() would warn and show nothing.
os.environ.pop("MPLBACKEND", None)

# The build's executed copies of the notebooks are not tests.
collect_ignore_glob = ["_build/*"]


def pytest_configure(config) -> None:
    """Run notebooks with the Python that runs pytest (a virtualenv's), not a kernelspec's."""
    option = config.option
    if getattr(option, "nbval_kernel_name", None) is None and hasattr(option, "nbval_current_env"):
        option.nbval_current_env = True
