"""Static parity of an exported GGUF file: it holds the merged model and its tokenizer, exactly.

Read back with the ``gguf`` package, no compiled llama.cpp needed, so these run everywhere:

* :func:`tensor_mismatches`: every tensor of the GGUF file equals the merged model's, after
  the converter's renaming (``model.layers.0.self_attn.q_proj.weight`` becomes
  ``blk.0.attn_q.weight``) and, for Llama, its reordering of the query and key rows (llama.cpp
  rotates adjacent pairs of a head's dimensions, Hugging Face its two halves);
* :func:`vocab_mismatches`: the vocabulary, merges, special tokens and chat template equal
  the tokenizer's;
* :func:`merges_outside_letter_runs`: why llama.cpp's pre-tokenizer gives Hugging Face's
  token ids at all. A pre-tokenizer cuts text into pieces that BPE merges never cross. The
  tiny tokenizer cuts at each space, punctuation mark and digit; llama.cpp's ``default``
  cuts elsewhere too (a space goes with the word after it). If no merge joins two
  characters unless both are letters, the two cuts lead to the same tokens.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: HF's ``{% generation %}`` markers: they mark the trained tokens for training and print
#: nothing. llama.cpp's and Ollama's template engines do not know them, so the exported
#: template is the tokenizer's without them.
_GENERATION_TAG = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


def inference_template(template: str) -> str:
    """The chat template without HF's ``{% generation %}`` markers (same rendering).

    Example:
        >>> inference_template("{% generation %}{{ x }}{% endgeneration %}")
        '{{ x }}'
    """
    return _GENERATION_TAG.sub("", template)


def read_gguf(path: str | Path):
    """A :class:`gguf.GGUFReader` of ``path`` (memory-mapped: nothing is read yet)."""
    from gguf import GGUFReader

    return GGUFReader(str(path))


def gguf_metadata(reader) -> dict[str, Any]:
    """The GGUF file's key-value metadata, arrays included (``tokenizer.ggml.tokens``...)."""
    out = {}
    for key, f in reader.fields.items():
        if not key.startswith("GGUF."):
            out[key] = f.contents()
    return out


# --- the tensors ----------------------------------------------------------------------------


@dataclass
class TensorReport:
    """What :func:`tensor_mismatches` compared."""

    compared: int = 0  # tensors found equal or not
    generated: list[str] = field(default_factory=list)  # made by the converter from the config
    problems: list[str] = field(default_factory=list)  # one line per difference
    types: dict[str, int] = field(default_factory=dict)  # GGUF tensor type -> how many


#: Tensors the converter computes from the config, with no counterpart in the checkpoint:
#: Llama 3.1's RoPE frequency factors (``rope_scaling`` of type ``llama3``).
GENERATED = {"rope_freqs.weight"}


def _permute_rows(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """llama.cpp's order of a query or key weight's rows: (n_head * d, in), pairs interleaved.

    HF rotates dimension i with i + d/2 of each head; llama.cpp rotates 2i with 2i + 1
    (the converter's ``LlamaModel.permute``).
    """
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2) \
        .reshape(w.shape)


def _hf_tensors(merged_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors model folder (the tiny model: 8 MB)."""
    from safetensors.torch import load_file

    from .merging import shard_files

    weight_map, _ = shard_files(merged_dir)
    out: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        out.update(load_file(str(merged_dir / shard)))
    return out


def tensor_mismatches(gguf_path: str | Path, merged_dir: str | Path) -> TensorReport:
    """Compare every tensor of an f32/f16/bf16 GGUF file with the merged model's, exactly.

    Each HF tensor is cast to the GGUF tensor's type (the converter's only change besides
    names and the Llama row order), so the comparison is exact, not within a tolerance.

    Raises:
        ValueError: the file holds quantised tensors (Q8_0...), which round by design.
    """
    import gguf

    reader, merged_dir = read_gguf(gguf_path), Path(merged_dir)
    meta = gguf_metadata(reader)
    arch = meta["general.architecture"]
    names = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    name_map = gguf.get_tensor_name_map(names[arch], int(meta[f"{arch}.block_count"]))
    n_head, n_kv = meta[f"{arch}.attention.head_count"], meta[f"{arch}.attention.head_count_kv"]
    hf = _hf_tensors(merged_dir)
    renamed = {name_map.get_name(k, try_suffixes=(".weight", ".bias")): k for k in hf}
    report = TensorReport()
    for t in reader.tensors:
        kind = t.tensor_type.name
        report.types[kind] = report.types.get(kind, 0) + 1
        if kind not in ("F32", "F16", "BF16"):
            raise ValueError(f"{Path(gguf_path).name}: {t.name} is {kind}; compare a f32/f16 export")
        source = renamed.pop(t.name, None)
        if source is None and t.name in GENERATED:
            report.generated.append(t.name)
            continue
        if source is None:
            report.problems.append(f"{t.name}: no tensor of the merged model maps to it")
            continue
        want = hf[source].float()
        if arch == "llama" and t.name.endswith(("attn_q.weight", "attn_k.weight")):
            want = _permute_rows(want, n_head if "attn_q" in t.name else n_kv)
        dtype = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}[kind]
        got = torch.from_numpy(np.array(t.data)).reshape(want.shape) if kind != "BF16" else \
            torch.from_numpy(np.array(t.data)).view(torch.bfloat16).reshape(want.shape)
        report.compared += 1
        if not torch.equal(got.to(dtype), want.to(dtype)):
            diff = (got.float() - want.to(dtype).float()).abs().max().item()
            report.problems.append(f"{t.name} ({source}): differs by up to {diff:.2e}")
    tied = {"lm_head.weight"} if meta.get(f"{arch}.tie_word_embeddings", True) else set()
    report.problems += [f"{k}: not in the GGUF file" for k in renamed.values() if k not in tied]
    return report


# --- the tokenizer -------------------------------------------------------------------------


def vocab_mismatches(gguf_path: str | Path, tokenizer) -> list[str]:
    """What differs between the GGUF file's tokenizer and ``tokenizer`` (empty: nothing).

    Compared: every token string in id order, every merge in rank order, the BOS, EOS and
    padding ids, which tokens are special (llama.cpp's CONTROL type: never split, printed
    only on request), and the chat template (:func:`inference_template` of the tokenizer's).
    """
    meta = gguf_metadata(read_gguf(gguf_path))
    problems = []
    vocab = tokenizer.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    if meta["tokenizer.ggml.tokens"] != tokens:
        diff = sum(a != b for a, b in zip(meta["tokenizer.ggml.tokens"], tokens))
        problems.append(f"vocabulary: {diff} token(s) differ, sizes "
                        f"{len(meta['tokenizer.ggml.tokens'])} and {len(tokens)}")
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in model.get("merges", [])]
    if meta.get("tokenizer.ggml.merges", []) != merges:
        problems.append(f"merges: {len(meta.get('tokenizer.ggml.merges', []))} in the GGUF file, "
                        f"{len(merges)} in the tokenizer, or in another order")
    for key, want in [("bos", tokenizer.bos_token_id), ("eos", tokenizer.eos_token_id),
                      ("padding", tokenizer.pad_token_id)]:
        got = meta.get(f"tokenizer.ggml.{key}_token_id")
        if want is not None and got != want:
            problems.append(f"{key} token: id {got} in the GGUF file, {want} in the tokenizer")
    control = {i for i, kind in enumerate(meta["tokenizer.ggml.token_type"]) if kind == 3}
    special = set(tokenizer.all_special_ids) | {i for i, tok in tokenizer.added_tokens_decoder.items()
                                                if tok.special}
    if special - control:
        problems.append(f"special tokens not marked CONTROL: {sorted(special - control)}")
    want_template = inference_template(tokenizer.chat_template or "")
    if meta.get("tokenizer.chat_template", "") != want_template:
        problems.append("chat template: the GGUF file's differs from the tokenizer's")
    return problems


def _byte_of_char() -> dict[str, int]:
    """GPT-2's byte-level table, inverted: the printable character that stands for each byte.

    Printable Latin-1 bytes stand for themselves; the others (space, control bytes) are
    shifted to characters from 256 up (a space is ``Ġ``).
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in keep]
    table = {chr(b): b for b in keep}
    table.update({chr(256 + n): b for n, b in enumerate(shifted)})
    return table


_BYTE_OF = _byte_of_char()


def _token_bytes(token: str) -> bytes:
    """A byte-level BPE token's bytes (``"Ġthe"`` -> ``b" the"``)."""
    return bytes(_BYTE_OF[c] for c in token)


def _pieces(data: bytes) -> list[bytes]:
    """``data`` cut at character boundaries: whole UTF-8 characters, and at either end
    possibly a piece of one (continuation bytes first, or a lead byte without its tail)."""
    pieces, i = [], 0
    while i < len(data):
        j = i + 1
        while j < len(data) and data[j] >> 6 == 2 and (data[i] >> 6 == 2 or j - i < _width(data[i])):
            j += 1
        pieces.append(data[i:j])
        i = j
    return pieces


def _width(lead: int) -> int:
    """The length of a UTF-8 character from its first byte (1 for a stray continuation byte)."""
    return 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4 if lead >> 3 == 30 else 1


def _characters(piece: bytes, alphabet: str) -> set[str]:
    """The characters of ``alphabet`` that ``piece`` can be: itself, or one it is a cut end of."""
    try:
        return {piece.decode("utf-8")}
    except UnicodeDecodeError:
        pass
    cut_tail = piece[0] >> 6 == 2  # continuation bytes: the end of a character
    return {c for c in alphabet if len(c.encode()) > len(piece)
            and (c.encode().endswith(piece) if cut_tail else c.encode().startswith(piece))}


def merges_outside_letter_runs(tokenizer, alphabet: str) -> list[str]:
    """The merges whose result spans two characters that are not both letters.

    A merge may build up the bytes of one character (any character), or join whole
    letters (Unicode category L*). A merged token that starts or ends inside a character
    is judged by the characters of ``alphabet`` that piece can belong to (a BPE merge is
    learnt from, and fires on, text; the tiny tokenizer's alphabet is
    :func:`corpus_alphabet`). Anything else (a space, digit or punctuation mark joined to
    a neighbour) is returned, as ``"a b"``.
    """
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    letters: dict[bytes, bool] = {}  # piece -> all the characters it can be are letters

    def all_letters(piece: bytes) -> bool:
        if piece not in letters:
            letters[piece] = all(unicodedata.category(c).startswith("L")
                                 for c in _characters(piece, alphabet))
        return letters[piece]

    bad = []
    for merge in model.get("merges", []):
        a, b = merge if isinstance(merge, list) else merge.split(" ", 1)
        pieces = _pieces(_token_bytes(a + b))
        if len(pieces) > 1 and not all(all_letters(p) for p in pieces):
            bad.append(f"{a} {b}")
    return bad


def corpus_alphabet() -> str:
    """Every character of the text the tiny tokenizer was trained on (the tiny world's corpus,
    regenerated from ``configs/pretrain-tiny.yaml``: about a second)."""
    from ..tinyworld.corpus import make_corpus
    from ..tinyworld.pretrain import load_pretrain_config, world_from_config

    cfg = load_pretrain_config()
    docs = make_corpus(world_from_config(cfg), int(cfg["tokenizer"]["n_documents"]),
                       seed=int(cfg.get("seed", 0)))
    return "".join(sorted(set("".join(docs))))
