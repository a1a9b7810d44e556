"""NF4 from scratch agrees with bitsandbytes bit for bit (CPU kernels)."""

import math

import bitsandbytes.functional as bnbF
import pytest
import torch

from ift_tutorial.scratch import quantization as q


def test_nf4_levels_equal_bitsandbytes_table():
    ref = bnbF.get_4bit_type("nf4", device="cpu")
    assert torch.equal(q.NF4_LEVELS, ref)
    # the rounded offset is the paper's 1 - (1/30 + 1/32) / 2
    assert q.NF4_OFFSET == pytest.approx(1 - (1 / 30 + 1 / 32) / 2, abs=1e-7)
    # asymmetric: 7 negative levels, an exact zero, 8 positive levels
    assert (q.NF4_LEVELS < 0).sum() == 7 and (q.NF4_LEVELS > 0).sum() == 8
    assert q.NF4_LEVELS[7] == 0 and q.NF4_LEVELS[0] == -1 and q.NF4_LEVELS[-1] == 1


def test_levels_have_equal_normal_mass_per_half():
    # each positive level's quantile probability is evenly spaced between 0.5 and the offset
    from statistics import NormalDist

    pos = q.nf4_levels()[8:] * NormalDist().inv_cdf(q.NF4_OFFSET)
    probs = torch.tensor([NormalDist().cdf(float(v)) for v in pos])
    steps = probs.diff()
    assert torch.allclose(steps, steps.mean().expand_as(steps), atol=1e-5)


def test_dynamic_map_equals_bitsandbytes():
    assert torch.equal(q.dynamic_map_8bit(), bnbF.create_dynamic_map())


def test_fp4_levels_are_bitsandbytes_values():
    ref = bnbF.get_4bit_type("fp4", device="cpu")
    assert torch.equal(torch.unique(ref), torch.unique(q.FP4_LEVELS))


@pytest.mark.parametrize(
    "shape,dtype",
    [((96, 70), torch.float32), ((33, 17), torch.bfloat16), ((64, 130), torch.float16)],
)
def test_codes_and_values_equal_bitsandbytes(shape, dtype):
    torch.manual_seed(0)
    w = (torch.randn(shape) * 0.05).to(dtype)
    packed, state = bnbF.quantize_4bit(w, blocksize=64, quant_type="nf4",
                                       compress_statistics=False)
    codes, absmax = q.quantize_nf4(w, blocksize=64)
    assert codes.dtype == torch.uint8 and int(codes.max()) <= 15
    assert codes.shape == (w.numel(),)
    assert torch.equal(q.pack_4bit(codes), packed)
    assert torch.equal(absmax, state.absmax)
    assert torch.equal(q.unpack_4bit(packed, w.numel()), codes)
    ours = q.dequantize_nf4(codes, absmax, w.shape).to(dtype)
    assert torch.equal(ours, bnbF.dequantize_4bit(packed, state))


def test_double_quantisation_matches_bitsandbytes():
    torch.manual_seed(1)
    w = torch.randn(512, 512) * 0.02  # 4096 blocks of 64 -> 16 second-level blocks
    packed, state = bnbF.quantize_4bit(w, blocksize=64, quant_type="nf4",
                                       compress_statistics=True)
    codes, absmax = q.quantize_nf4(w)
    dq = q.double_quantize(absmax)
    assert torch.equal(dq.absmax2, state.state2.absmax)
    assert dq.offset == pytest.approx(float(state.offset))
    # bitsandbytes' CPU kernel searches the 8-bit code book approximately and lands on a
    # neighbouring code for a few values in a thousand; ours takes the nearest level
    agree = (dq.codes == state.absmax).float().mean()
    assert agree > 0.99
    restored = q.double_dequantize(dq)
    ref = bnbF.dequantize_blockwise(state.absmax, state.state2) + state.offset
    assert (restored - absmax).abs().mean() <= (ref - absmax).abs().mean()
    assert (restored - absmax).abs().max() < 0.01 * absmax.max()
    assert torch.allclose(restored, ref, rtol=0.02)


def test_bits_per_parameter():
    assert q.constant_bits_per_param(64) == 0.5
    assert q.constant_bits_per_param(64, double_quant=True) == pytest.approx(0.127, abs=5e-4)
    saving = q.constant_bits_per_param(64) - q.constant_bits_per_param(64, double_quant=True)
    assert saving == pytest.approx(0.373, abs=5e-4)
    assert q.bits_per_param(64, double_quant=True) == pytest.approx(4.127, abs=5e-4)


def test_nf4_beats_fp4_and_int4_on_normal_weights():
    torch.manual_seed(0)
    table = q.quantization_error_table({"normal": torch.randn(256, 512) * 0.02})
    row = table.loc["normal"]
    assert row["NF4"] < row["int4"] < row["FP4"]
    assert 0.05 < row["NF4"] < 0.15


def test_zero_block_and_odd_length_round_trip():
    w = torch.zeros(3, 5)
    codes, absmax = q.quantize_nf4(w)
    assert torch.equal(q.dequantize_nf4(codes, absmax, w.shape), w)
    assert math.ceil(w.numel() / 2) == q.pack_4bit(codes).shape[0]
    with pytest.raises(ValueError):
        q.pack_4bit(torch.tensor([16], dtype=torch.uint8))
