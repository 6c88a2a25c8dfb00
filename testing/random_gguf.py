"""Random-weight llama models in GGUF, written with the ``gguf`` package: for tests and benchmarks.

Nothing is downloaded: a byte-fallback SentencePiece-style vocabulary, random weights, and a chat
template of one's choice. Such a model answers at random; it exercises loading, chat templates,
grammars, servers and bookkeeping, never label quality.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
MISTRAL = (  # like Mistral/Mixtral: no system role, and roles must alternate
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)
TEMPLATES = {"chatml": CHATML, "mistral": MISTRAL}


@dataclass(frozen=True)
class Size:
    n_embd: int = 64
    n_ff: int = 128
    n_layers: int = 2
    n_head: int = 4
    n_head_kv: int = 2
    n_ctx: int = 4096


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [
        gguf.TokenType.UNKNOWN,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
        gguf.TokenType.CONTROL,
    ]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = (
        [chr(c) for c in range(33, 127)]
        + ["▁"]
        + [
            '{"',
            '":',
            ' "',
            '"}',
            "▁{",
            "▁0",
            "▁1",
            "fracture",
            "smoke",
            "▁Fraktur",
            "▁Keine",
            "▁der",
            "▁des",
            "en",
            "er",
        ]
    )
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (len(tokens) - len(pieces)) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def write_random_gguf(path: str | Path, template: str = "chatml", size: Size = Size(), seed: int = 0) -> Path:
    """Write a random llama model with the named chat template ("chatml" or "mistral") to ``path``."""
    import gguf

    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocabulary()
    n_vocab, head_dim = len(tokens), size.n_embd // size.n_head
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(f"random-llama-{template}")
    writer.add_context_length(size.n_ctx)
    writer.add_embedding_length(size.n_embd)
    writer.add_block_count(size.n_layers)
    writer.add_feed_forward_length(size.n_ff)
    writer.add_head_count(size.n_head)
    writer.add_head_count_kv(size.n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(False)
    writer.add_chat_template(TEMPLATES[template])

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.5).astype(np.float32)

    kv = size.n_head_kv * head_dim
    writer.add_tensor("token_embd.weight", weight(n_vocab, size.n_embd))
    writer.add_tensor("output_norm.weight", np.ones(size.n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", weight(n_vocab, size.n_embd))
    for i in range(size.n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(size.n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", weight(size.n_embd, size.n_embd))
        writer.add_tensor(f"blk.{i}.attn_k.weight", weight(kv, size.n_embd))
        writer.add_tensor(f"blk.{i}.attn_v.weight", weight(kv, size.n_embd))
        writer.add_tensor(f"blk.{i}.attn_output.weight", weight(size.n_embd, size.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(size.n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(size.n_ff, size.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(size.n_ff, size.n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(size.n_embd, size.n_ff))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
