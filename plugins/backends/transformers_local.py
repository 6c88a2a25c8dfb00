"""The ``transformers`` labeler: a local Hugging Face model folder, CPU or GPU, optionally with a LoRA adapter.

Batches are decoded greedily with left padding, through the tokenizer's own chat template.
Answers are constrained to the task's JSON Schema by xgrammar's logits processor for
transformers (the grammar engine vLLM uses; it compiles a schema once per run into a token mask
and its matcher follows each row of a batch). A free-text task is constrained by its length
only: ``max_tokens`` defaults to its ``max_length`` plus one, so a text that runs on is too long
and is re-asked. Nothing is downloaded (``local_files_only``) and no model code is run
(``trust_remote_code=False``). torch, transformers, xgrammar and peft are imported only when the
backend is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from report2label.core.errors import R2LError
from report2label.core.hashing import file_sha256
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import Labeler, LabelRequest, RowFailure
from report2label.core.labelling.chat import fold_system, supports_system
from report2label.core.labelling.labeler import answer_budget
from report2label.core.local_model import load_local_model

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _local_folder(value: str, what: str) -> str:
    if not Path(value).is_dir():
        raise ValueError(f"{value}: no such local {what} folder (the transformers backend never downloads)")
    return value


def load_model(folder: str, dtype: Any, adapter: str | None = None) -> tuple[Any, Any]:
    """The tokenizer (left padding) and causal LM of a local folder, with a LoRA ``adapter`` applied."""
    from transformers.utils import logging

    logging.disable_progress_bar()  # the engine shows its own
    tokenizer, model = load_local_model(folder, dtype, padding_side="left")
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=False, local_files_only=True)
    return tokenizer, model


class TransformersLabeler(Labeler):
    name = "transformers"
    description = "A local Hugging Face model folder (CPU or GPU), schema-constrained by xgrammar; LoRA adapters."
    batch_size = 8

    class Options(Labeler.Options):
        model: str = Field(description="A local model folder (Hugging Face layout); nothing is downloaded.")
        adapter: str | None = Field(None, description="A LoRA adapter folder (r2l finetune's output).")
        device: str = Field("auto", description="cpu, cuda, cuda:1, ... (auto: cuda when there is a GPU).")
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
            "auto", description="auto: bfloat16 on a GPU, float32 on the CPU."
        )
        max_tokens: int | None = Field(None, ge=1, description="Answer budget; default: from the task's schema.")

        @field_validator("model")
        @classmethod
        def _model(cls, value: str) -> str:
            return _local_folder(value, "model")

        @field_validator("adapter")
        @classmethod
        def _adapter(cls, value: str | None) -> str | None:
            if value is not None and not (Path(_local_folder(value, "adapter")) / "adapter_config.json").is_file():
                raise ValueError(f"{value}: not a LoRA adapter folder (no adapter_config.json)")
            return value

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        try:
            import torch
            import xgrammar
            import xgrammar.contrib.hf  # noqa: F401 (the logits processor, imported with transformers)
        except ImportError:
            raise R2LError(
                "the transformers backend needs torch, transformers, xgrammar and peft: "
                "pip install 'report2label[transformers]'"
            ) from None
        self.torch, self.xgrammar = torch, xgrammar
        self.device = options.device if options.device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise R2LError(f"backend 'transformers': option 'device': {self.device!r}, but no CUDA GPU is available")
        dtype_name = options.dtype
        if dtype_name == "auto":
            dtype_name = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype = dtype_name
        try:
            self.tokenizer, model = load_model(options.model, getattr(torch, dtype_name), options.adapter)
        except (OSError, ValueError) as exc:  # the adapter's
            raise R2LError(f"{options.adapter}: cannot load the adapter: {str(exc).splitlines()[0]}") from None
        self.model = model.to(self.device).eval()
        self.fold = not supports_system(self._render)
        self.eos = self._stop_tokens()
        text_field = task.text_field
        if text_field:
            self.grammar = None
            self.max_tokens = options.max_tokens or task.answer_schema["properties"][text_field]["maxLength"] + 1
        else:
            info = xgrammar.TokenizerInfo.from_huggingface(
                self.tokenizer, vocab_size=self.model.config.vocab_size, stop_token_ids=self.eos
            )
            schema = json.dumps(task.answer_schema)
            self.grammar = xgrammar.GrammarCompiler(info).compile_json_schema(schema, any_whitespace=False)
            self.max_tokens = options.max_tokens or answer_budget(task, self._count)

    def _render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _stop_tokens(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    @property
    def model_id(self) -> str:
        name = Path(self.options.model).resolve().name
        if not self.options.adapter:
            return name
        adapter = Path(self.options.adapter)
        weights = adapter / ADAPTER_WEIGHTS
        digest = file_sha256(weights)[:12] if weights.is_file() else "unhashed"
        return f"{name}+lora:{adapter.resolve().name}@{digest}"

    @property
    def params(self) -> dict[str, Any]:
        return {
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "structured": "none (free text, length only)" if self.grammar is None else "json_schema (xgrammar)",
            "folded_system": self.fold,
            "device": self.device,
            "dtype": self.dtype,
            "adapter": self.options.adapter,
        }

    def prompt_text(self, messages) -> str:
        return self._render(fold_system(messages) if self.fold else list(messages))

    def count_tokens(self, messages) -> int:
        return self._count(self.prompt_text(messages))

    def label(self, requests: list[LabelRequest]) -> list[str | RowFailure]:
        if not requests:
            return []
        torch = self.torch
        texts = [self.prompt_text(r.messages) for r in requests]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        processors = []
        if self.grammar is not None:
            processors.append(self.xgrammar.contrib.hf.LogitsProcessor(self.grammar))
        with torch.inference_mode():
            output = self.model.generate(
                **batch,
                do_sample=False,
                max_new_tokens=self.max_tokens,
                eos_token_id=self.eos,
                pad_token_id=self.tokenizer.pad_token_id,
                logits_processor=processors,
            )
        new = output[:, batch["input_ids"].shape[1] :]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)


@hookimpl
def register_labelers(register) -> None:
    register(TransformersLabeler)
