"""Random-weight Llama models in Hugging Face layout, for vLLM throughput runs without a download.

Writes ``config.json``, sharded ``*.safetensors`` with an index, and a byte-level BPE tokenizer
(every byte is a token, no merges) with a ChatML chat template. ``SIZES["8b"]`` has the shape of
Llama-3-8B (about 8.0e9 parameters, 16 GB in float16); ``SIZES["tiny"]`` is for tests. Such a
model answers at random: it measures throughput and exercises batching and structured outputs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .random_gguf import CHATML


@dataclass(frozen=True)
class LlamaShape:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    vocab_size: int
    max_position_embeddings: int = 8192

    @property
    def parameters(self) -> int:
        h, i, kv = self.hidden_size, self.intermediate_size, self.num_key_value_heads
        kv_dim = kv * h // self.num_attention_heads
        layer = 2 * h * h + 2 * h * kv_dim + 3 * h * i + 2 * h
        return self.num_hidden_layers * layer + 2 * self.vocab_size * h + h


SIZES = {
    "8b": LlamaShape(4096, 14336, 32, 32, 8, 128256),
    "tiny": LlamaShape(64, 128, 2, 4, 2, 512, 2048),
}
SPECIAL = ["<s>", "</s>", "<|im_start|>", "<|im_end|>"]


def _byte_alphabet() -> list[str]:
    """The printable stand-in character for each byte, as byte-level BPE tokenizers use."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def _tokenizer(folder: Path, shape: LlamaShape) -> None:
    vocab = {token: i for i, token in enumerate(SPECIAL)}
    vocab |= {char: len(SPECIAL) + b for b, char in enumerate(_byte_alphabet())}
    assert len(vocab) <= shape.vocab_size, "the model's vocabulary must cover the tokenizer's"
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": t,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, t in enumerate(SPECIAL)
        ],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [],
        },
    }
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "<|im_end|>",
                "pad_token": "</s>",
                "chat_template": CHATML,
                "model_max_length": shape.max_position_embeddings,
            },
            indent=2,
        )
    )


def write_random_llama(folder: str | Path, size: str = "tiny", seed: int = 0, std: float = 0.02) -> Path:
    """Write a random Llama of ``size`` ("tiny" or "8b") into ``folder``; one shard per layer.

    ``std`` is the weights' standard deviation: at 0.02 (an initialisation's) the tiny model's
    answers hardly depend on the prompt; at about 0.3 they do.
    """
    from safetensors.numpy import save_file

    shape, folder = SIZES[size], Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, kv_dim = shape.hidden_size, shape.num_key_value_heads * shape.hidden_size // shape.num_attention_heads

    def weight(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * std).astype(np.float16)

    shards: list[dict[str, np.ndarray]] = [{"model.embed_tokens.weight": weight(shape.vocab_size, h)}]
    for i in range(shape.num_hidden_layers):
        p = f"model.layers.{i}."
        shards.append(
            {
                p + "self_attn.q_proj.weight": weight(h, h),
                p + "self_attn.k_proj.weight": weight(kv_dim, h),
                p + "self_attn.v_proj.weight": weight(kv_dim, h),
                p + "self_attn.o_proj.weight": weight(h, h),
                p + "mlp.gate_proj.weight": weight(shape.intermediate_size, h),
                p + "mlp.up_proj.weight": weight(shape.intermediate_size, h),
                p + "mlp.down_proj.weight": weight(h, shape.intermediate_size),
                p + "input_layernorm.weight": np.ones(h, np.float16),
                p + "post_attention_layernorm.weight": np.ones(h, np.float16),
            }
        )
    shards.append({"model.norm.weight": np.ones(h, np.float16), "lm_head.weight": weight(shape.vocab_size, h)})
    weight_map, total = {}, 0
    for n, tensors in enumerate(shards):
        name = f"model-{n + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        weight_map |= dict.fromkeys(tensors, name)
        total += sum(t.nbytes for t in tensors.values())
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=1)
    )
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        **asdict(shape),
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "bos_token_id": 0,
        "eos_token_id": 3,
        "pad_token_id": 1,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "generation_config.json").write_text(json.dumps({"bos_token_id": 0, "eos_token_id": 3}))
    _tokenizer(folder, shape)
    return folder
