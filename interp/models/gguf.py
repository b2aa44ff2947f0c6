"""De-quantize a GGUF file once into a cached Hugging Face directory.

transformers can read GGUF files (with the ``gguf`` package) but de-quantizing takes most of a
minute for a small model, and the result cannot be saved with ``save_pretrained`` as is. interp does
it once per file, keyed by the file's sha256, under ``$INTERP_CACHE/hf-from-gguf/<sha256>``:
safetensors weights, config and tokenizer files. The conversion is written into a temporary folder
next to the final one and renamed only when complete, so an interrupted run never leaves a folder a
later call would take for finished.

Example:
    >>> from interp.models.gguf import convert_gguf
    >>> hf_dir = convert_gguf("tiny-llama.gguf")          # doctest: +SKIP
    >>> sorted(p.name for p in hf_dir.iterdir())          # doctest: +SKIP
    ['config.json', 'generation_config.json', 'interp-conversion.json', 'model.safetensors', ...]
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from tqdm.auto import tqdm

from interp.atomic import write_json_atomic
from interp.paths import cache_dir

__all__ = ["convert_gguf", "sha256_file", "converted_dir", "MARKER"]

#: Written last into a converted folder; its presence means the folder is complete.
MARKER = "interp-conversion.json"


def sha256_file(path: "str | os.PathLike[str]", *, progress: bool = False) -> str:
    """The sha256 of a file, read in 4 MiB blocks."""
    path = Path(path)
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as fh, tqdm(
        total=size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", disable=not progress
    ) as bar:
        while block := fh.read(4 << 20):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def _root() -> Path:
    return cache_dir("hf-from-gguf")


def converted_dir(sha256: str) -> Path | None:
    """The finished conversion of the GGUF with this sha256, or None if there is none yet."""
    final = _root() / sha256
    return final if (final / MARKER).is_file() else None


def _cached_sha256(path: Path) -> str:
    """sha256 of ``path``, remembered by (absolute path, size, mtime) so warm loads skip hashing."""
    memo_file = _root() / "sha256-memo.json"
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    digest = sha256_file(path, progress=stat.st_size > (256 << 20))
    memo[key] = digest
    write_json_atomic(memo_file, memo)
    return digest


def convert_gguf(
    path: "str | os.PathLike[str]", *, sha256: str | None = None, label: str | None = None
) -> Path:
    """Return a Hugging Face directory holding the de-quantized weights of a GGUF file.

    Args:
        path: the ``.gguf`` file. Any architecture transformers can de-quantize works (Gemma,
            Llama, Qwen2, Mistral, ...).
        sha256: the file's sha256 if already known (skips hashing).
        label: a name for the progress bar.

    Returns:
        The cached folder ``$INTERP_CACHE/hf-from-gguf/<sha256>``; created on the first call.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}; pass the path of an existing .gguf file")
    digest = sha256 or _cached_sha256(path)
    done = converted_dir(digest)
    if done is not None:
        return done
    return _convert(path, digest, label or path.name)


def _convert(path: Path, digest: str, label: str) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = _root()
    final = root / digest
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest[:16]}.partial-", dir=root))
    start = time.perf_counter()
    steps = tqdm(total=3, desc=f"interp: converting {label} (once)", unit="step")
    try:
        steps.set_postfix_str("tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        steps.update()
        steps.set_postfix_str("de-quantizing weights")
        model = AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, dtype=torch.float32
        )
        steps.update()
        steps.set_postfix_str("writing safetensors")
        # The loaded model is plain fp32 now; drop the GGUF quantizer so it can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        steps.update()
        meta = {
            "sha256": digest,
            "source": str(path.resolve()),
            "architecture": (model.config.architectures or [type(model).__name__])[0],
            "seconds": round(time.perf_counter() - start, 2),
            "transformers": __import__("transformers").__version__,
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2))
        del model
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process finished the same conversion first: keep theirs.
            if converted_dir(digest) is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        steps.close()
    return final
