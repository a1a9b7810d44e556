"""llama.cpp's own converter (``convert_hf_to_gguf.py``), from a pinned llama-cpp-python sdist.

The converter is not in the ``gguf`` package and not in llama-cpp-python's wheels: it
ships in the *source* distribution, under ``vendor/llama.cpp/``, with the ``conversion``
package it imports and its own copy of ``gguf-py``. :func:`converter_dir` takes those
files out of the sdist of :data:`LLAMA_CPP_PYTHON` into a cache folder, once:

1. the sdist named by ``IFT_LLAMA_CPP_SDIST`` (a ``.tar.gz`` on disk: for offline
   machines), else
2. ``pip download llama-cpp-python==<pin> --no-binary :all:`` from PyPI (about 75 MB,
   half a minute; nothing is compiled).

The folder is ``$XDG_CACHE_HOME/ift-tutorial/llama.cpp-<pin>`` (``~/.cache`` by default).

**The pre-tokenizer hash.** The converter tells BPE pre-tokenizers apart by the SHA-256 of
the token ids its tokenizer gives for one test string, and refuses a hash it does not
know. A self-trained vocabulary, like the tiny model's, is in no table. Every merge of the
tiny vocabulary stays inside one character or one run of letters
(:func:`ift_tutorial.inference.gguf_checks.merges_outside_letter_runs`), so llama.cpp's
``default`` pre-tokenizer splits text where no merge crosses, and gives HF's token ids.
:data:`PROJECT_PRE_TOKENIZERS` registers exactly the project's hashes; any other unknown
tokenizer is refused by the converter as before.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import UserFacingError

#: The llama-cpp-python release whose converter and library the export uses (pyproject's
#: ``export`` extra pins the same).
LLAMA_CPP_PYTHON = "0.3.36"

#: The project's tokenizers, by the converter's hash, and the llama.cpp pre-tokenizer that
#: reproduces their ids: the tiny tokenizer, and the rehearsal stand-ins built on it (its
#: vocabulary plus a preset's special tokens).
PROJECT_PRE_TOKENIZERS = {
    "1c383d92376cbe95f52dd8c9a5807ec2d6f22c70d9620193ad53535b9dacd147": "default",
}

#: What the converter's folder holds, under the sdist's ``vendor/llama.cpp/``.
_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")


class ConverterError(UserFacingError):
    """The converter cannot be fetched, or it failed; the message says why and what to do."""


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/ift-tutorial`` (``~/.cache/ift-tutorial`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "ift-tutorial"


def converter_dir(fetch: bool = True) -> Path:
    """The folder holding ``convert_hf_to_gguf.py``, fetched into the cache on first use.

    Raises:
        ConverterError: not cached and ``fetch`` is False, or the sdist cannot be had.
    """
    folder = cache_root() / f"llama.cpp-{LLAMA_CPP_PYTHON}"
    if (folder / "convert_hf_to_gguf.py").is_file():
        return folder
    if not fetch:
        raise ConverterError(f"llama.cpp's converter is not in {folder}; fetch it with "
                             "`python -m ift_tutorial.inference.converter`")
    sdist = os.environ.get("IFT_LLAMA_CPP_SDIST")
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(sdist).expanduser() if sdist else _download_sdist(Path(tmp))
        if not archive.is_file():
            raise ConverterError(f"IFT_LLAMA_CPP_SDIST={sdist}: no such file")
        _extract(archive, folder)
    return folder


def _download_sdist(into: Path) -> Path:
    """``pip download`` the pinned sdist from the package index (no build, no deps)."""
    spec = f"llama-cpp-python=={LLAMA_CPP_PYTHON}"
    done = subprocess.run([sys.executable, "-m", "pip", "download", spec, "--no-deps",
                           "--no-binary", ":all:", "-q", "-d", str(into)],
                          capture_output=True, text=True)
    found = sorted(into.glob("llama_cpp_python-*.tar.gz"))
    if not found:  # pip may fail after the download, preparing metadata: the file is what counts
        raise ConverterError(f"could not download {spec} (the sdist that carries llama.cpp's "
                             f"converter): {done.stderr.strip().splitlines()[-1:]}; without "
                             "network, point IFT_LLAMA_CPP_SDIST at a copy of the .tar.gz")
    return found[0]


def _extract(archive: Path, folder: Path) -> None:
    """The converter's files of the sdist into ``folder``, atomically (a rename at the end)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".converter-"))
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            _, _, rel = m.name.partition("/vendor/llama.cpp/")
            if rel and rel.startswith(_PARTS) and (m.isfile() or m.isdir()):
                m.name = rel
                members.append(m)
        if not any(m.name == "convert_hf_to_gguf.py" for m in members):
            raise ConverterError(f"{archive.name}: no vendor/llama.cpp/convert_hf_to_gguf.py")
        tar.extractall(staging, members=members, filter="data")
    staging.rename(folder)


def check_text(folder: Path) -> str:
    """The converter's test string (``chktxt`` in ``get_vocab_base_pre``), read from its source."""
    tree = ast.parse((folder / "conversion" / "base.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "chktxt":
            return ast.literal_eval(node.value)
    raise ConverterError(f"{folder}: no chktxt in conversion/base.py (a newer converter?)")


def pre_tokenizer_hash(tokenizer, folder: Path | None = None) -> str:
    """The converter's identifier of ``tokenizer``'s pre-tokenizer: SHA-256 of ``str(ids)``."""
    ids = tokenizer.encode(check_text(folder or converter_dir()))
    return hashlib.sha256(str(ids).encode()).hexdigest()


# Run in a fresh interpreter: the converter puts its own gguf-py first on sys.path and
# sets up logging, which must not leak into the caller. argv: folder, hash, name, args...
_RUNNER = r"""
import ast, hashlib, logging, sys
from pathlib import Path
root, known_hash, pre_name = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.argv = ["convert_hf_to_gguf.py", *sys.argv[4:]]
sys.path[:0] = [str(root), str(root / "gguf-py")]
import conversion.base as base
tree = ast.parse((root / "conversion" / "base.py").read_text(encoding="utf-8"))
chktxt = next(ast.literal_eval(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
              and getattr(n.targets[0], "id", None) == "chktxt")
original = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    ids = tokenizer.encode(chktxt)
    if hashlib.sha256(str(ids).encode()).hexdigest() == known_hash:
        return pre_name
    return original(self, tokenizer)
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
import convert_hf_to_gguf
convert_hf_to_gguf.main()
"""


def convert(model_dir: str | Path, out_file: str | Path, outtype: str = "f16") -> Path:
    """``convert_hf_to_gguf.py model_dir --outfile out_file --outtype outtype``.

    Args:
        model_dir: a Hugging Face model folder (safetensors, config, tokenizer).
        out_file: the ``.gguf`` file to write.
        outtype: ``f32``, ``f16``, ``bf16`` or ``q8_0`` (the converter's own types).

    Raises:
        ConverterError: the converter failed; the message carries its last lines.
    """
    from transformers import AutoTokenizer

    folder, model_dir, out_file = converter_dir(), Path(model_dir), Path(out_file)
    digest = pre_tokenizer_hash(AutoTokenizer.from_pretrained(model_dir), folder)
    name = PROJECT_PRE_TOKENIZERS.get(digest, "")  # "": the converter's own table decides
    # its own gguf-py, not the installed gguf package: the two must match
    env = {k: v for k, v in os.environ.items() if k != "NO_LOCAL_GGUF"}
    done = subprocess.run([sys.executable, "-c", _RUNNER, str(folder), digest if name else "-",
                           name, str(model_dir), "--outfile", str(out_file), "--outtype", outtype],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0 or not out_file.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ConverterError(f"llama.cpp's converter failed on {model_dir.name}:\n{tail}")
    return out_file


if __name__ == "__main__":  # fetch once, e.g. in CI before the tests
    try:
        print(f"llama.cpp's converter ({LLAMA_CPP_PYTHON}): {converter_dir()}")
    except ConverterError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
