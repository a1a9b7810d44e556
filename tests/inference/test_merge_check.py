"""A merge is checked tensor by tensor from the files, as a 7B merge must be on a free Colab VM."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config
from safetensors.torch import load_file, save_file

from ift_tutorial.inference.merging import MergeError, adapted_weight, check_merged_tensors, merge_adapter
from ift_tutorial.paths import DATA_DIR

ADAPTER = DATA_DIR / "adapters" / "tiny-sft"


def test_a_merge_matches_w_plus_the_update_and_a_damaged_tensor_is_named(tmp_path):
    config = tiny_config()
    merged = merge_adapter(config, ADAPTER, tmp_path / "merged")
    assert check_merged_tensors(config, ADAPTER, merged) == 0.0
    assert check_merged_tensors(config, ADAPTER, merged, limit=2) == 0.0
    name, W, update = adapted_weight(config, ADAPTER)
    assert W.shape == update.shape and W.dtype == torch.float32 and update.abs().max() > 0
    weights = load_file(str(merged / "model.safetensors"))
    weights[name] = weights[name] - update.to(weights[name].dtype)  # the update left out
    save_file(weights, str(merged / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(MergeError, match=name.replace(".", r"\.")):
        check_merged_tensors(config, ADAPTER, merged)
