"""The plain-PyTorch QLoRA loop of chapter 7: its parts, and its losses against SFTTrainer's."""

from __future__ import annotations

import pytest
import torch
from helpers import small_train_file, tiny_config
from torch import nn
from transformers import set_seed

from ift_tutorial.scratch import quantization as q
from ift_tutorial.scratch.sft_loop import (MATCH_TOLERANCE, NF4Linear, adapter_state, batches,
                                           collate, qlora_model, sft_loop, trainer_losses,
                                           warmup_steps)

torch.set_num_threads(1)


def test_nf4_linear_stores_codes_and_multiplies_by_their_weight():
    torch.manual_seed(0)
    linear = nn.Linear(128, 32, bias=False)
    layer = NF4Linear(linear)
    assert layer.packed.dtype == torch.uint8 and layer.packed.numel() == 128 * 32 // 2
    codes, absmax = q.quantize_nf4(linear.weight.data)
    expected = q.dequantize_nf4(codes, q.double_dequantize(q.double_quantize(absmax)),
                                (32, 128))
    assert torch.equal(layer.weight, expected)
    x = torch.randn(3, 128)
    assert torch.equal(layer(x), x @ expected.T)
    error = torch.linalg.norm(layer.weight - linear.weight) / torch.linalg.norm(linear.weight)
    assert 0 < error < 0.15  # 4 bits: close, not equal


def test_collate_pads_right_and_masks_the_padding():
    batch = collate([([1, 2, 3], [-100, 2, 3]), ([4], [4])], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The loop and SFTTrainer, 6 steps from the same start: 64 conversations, 3 epochs."""
    from ift_tutorial.instructions.dataset import prepare_dataset
    from ift_tutorial.loading import load_model, load_tokenizer

    train = small_train_file(tmp_path_factory.mktemp("data") / "train.jsonl", 64)
    config = tiny_config(f"data.train={train}", "training.num_threads=1")
    t, m = config.training, config.model
    tokenizer = load_tokenizer(m)
    data, _ = prepare_dataset(config.data.train, tokenizer, max_length=m.max_length, strict=False)

    def loop(seed: int) -> tuple[nn.Module, dict, list[float]]:
        set_seed(t.seed)
        model = qlora_model(load_model(m, load_in_4bit=False), config.lora.r, config.lora.alpha)
        start = adapter_state(model)
        order = batches(data["messages"], tokenizer, t.per_device_train_batch_size, seed,
                        m.max_length)
        return model, start, sft_loop(model, order, 6, t.learning_rate,
                                      warmup_steps(config, 6), t.max_grad_norm)

    model, start, losses = loop(t.seed)
    theirs, summary = trainer_losses(config, 6, start)
    _, _, other_order = loop(t.seed + 1)
    return {"model": model, "start": start, "loop": losses, "trainer": theirs,
            "summary": summary, "other_order": other_order}


def test_only_the_adapter_trains(run):
    trainable = [n for n, p in run["model"].named_parameters() if p.requires_grad]
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    assert len(trainable) == 2 * 4 * 7  # A and B on 7 linear layers of 4 blocks
    assert all(torch.equal(s, torch.zeros_like(s)) for n, s in run["start"].items()
               if "lora_B" in n)  # the adapter starts as no change


def test_loop_matches_sft_trainer_step_by_step(run):
    loop, trainer = run["loop"], run["trainer"]
    assert len(loop) == len(trainer) == 6
    gaps = [abs(a - b) / b for a, b in zip(loop, trainer)]
    assert max(gaps) < MATCH_TOLERANCE, gaps
    assert loop[-1] < 0.9 * loop[0]  # and it learns


def test_the_tolerance_tells_another_batch_order_apart(run):
    gaps = [abs(a - b) / b for a, b in zip(run["other_order"], run["trainer"])]
    assert max(gaps) > 10 * MATCH_TOLERANCE


def test_trainer_summary_reads_the_real_trainer(run):
    s = run["summary"]
    assert s["model"] == "PeftModelForCausalLM, LoRA on 28 4-bit layers"
    assert s["optimizer"].startswith("AdamW") and "cosine" in s["schedule"]
    assert "assistant_masks" in s["labels"]
