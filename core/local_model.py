"""A local Hugging Face model folder: loaded from its files only, never from the Hub, never with its own code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import R2LError


def model_folder(path: str | Path) -> Path:
    """``path`` as a model folder on this machine (with its ``config.json``); a Hub name is refused, not looked up."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise R2LError(f"{path}: not a local model folder (no config.json); nothing is downloaded: pass the folder")
    return folder.resolve()


def load_local_model(path: str | Path, dtype: Any, padding_side: str | None = None) -> tuple[Any, Any]:
    """The tokenizer (with a chat template and a pad token; ``padding_side``: else its own) and causal LM of
    the local folder ``path``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = model_folder(path)
    try:
        padding = {"padding_side": padding_side} if padding_side else {}
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False, **padding)
        lm = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, trust_remote_code=False, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise R2LError(f"{path}: cannot load the model: {str(exc).splitlines()[0]}") from None
    if not tokenizer.chat_template:
        raise R2LError(f"{path}: its tokenizer has no chat template (tokenizer_config.json)")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, lm
