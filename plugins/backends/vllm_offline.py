"""The ``vllm`` labeler: offline, in-process batched inference on GPUs with vLLM.

Each call hands a whole batch to ``LLM.chat``; answers are constrained to the task's JSON Schema
(``StructuredOutputsParams`` since vLLM 0.12, ``GuidedDecodingParams`` before: one shim), with an
explicit ``max_tokens`` and no free whitespace. Prefix caching is on and the prompt puts the fixed
instructions first, so they are computed once. vllm is imported only when this backend is used.
Several GPUs: ``tensor_parallel_size`` within a process; data parallel: one process per GPU
group with ``r2l label --shard K/N`` on the same output folder. Confidence: the probability of each
label's value tokens from vLLM's ``logprobs``; with ``samples=K`` the agreement of K answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import Field, field_validator

from report2label.core.errors import R2LError
from report2label.core.hashing import file_sha256
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import Labeler, LabelRequest, RowFailure
from report2label.core.labelling.chat import fold_system, supports_system
from report2label.core.labelling.labeler import Answer, agreement, answer_budget, confidence_kind, token_confidence


def sampling_params(
    module: ModuleType, schema: dict, max_tokens: int, seed: int, temperature: float = 0.0, n: int = 1
) -> Any:
    """``SamplingParams`` constrained to ``schema``, for vLLM before and after v0.12: greedy with the
    chosen tokens' log-probabilities, or ``n`` samples at ``temperature``.

    ``module`` is ``vllm.sampling_params``.
    """
    common: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens, "seed": seed}
    common |= {"n": n} if temperature else {"logprobs": 1}
    if hasattr(module, "StructuredOutputsParams"):
        constraint = module.StructuredOutputsParams(json=schema, disable_any_whitespace=True)
        return module.SamplingParams(**common, structured_outputs=constraint)
    constraint = module.GuidedDecodingParams(json=schema, disable_any_whitespace=True)
    return module.SamplingParams(**common, guided_decoding=constraint)


LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


class VLLMLabeler(Labeler):
    name = "vllm"
    description = "Offline batched inference with vLLM on GPUs; schema-constrained, prefix-cached."
    batch_size = 2048

    class Options(Labeler.Options):
        model: str = Field(description="A local model folder (Hugging Face layout); nothing is downloaded.")
        tensor_parallel_size: int = Field(1, ge=1)
        pipeline_parallel_size: int = Field(1, ge=1)
        gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
        max_model_len: int | None = Field(None, ge=64)
        dtype: str = "auto"
        enforce_eager: bool = False
        max_tokens: int | None = Field(None, ge=1, description="Answer budget; default: the task's longest answer.")
        seed: int = 0
        samples: int = Field(
            1, ge=1, description="Answers per report; above 1 confidence is their agreement (self-consistency)."
        )
        sample_temperature: float = Field(0.7, gt=0, description="Temperature of the extra answers of samples > 1.")
        adapter: str | None = Field(None, description="A LoRA adapter folder (r2l finetune's output).")

        @field_validator("model")
        @classmethod
        def _local(cls, value: str) -> str:
            if not Path(value).exists():
                raise ValueError(f"{value}: no such local model (the vllm backend never downloads)")
            return value

        @field_validator("adapter")
        @classmethod
        def _adapter(cls, value: str | None) -> str | None:
            if value is not None and not (Path(value) / "adapter_config.json").is_file():
                raise ValueError(f"{value}: not a local LoRA adapter folder (no adapter_config.json)")
            return value

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        try:
            import vllm
            import vllm.sampling_params
        except ImportError:
            raise R2LError("the vllm backend needs vllm and a GPU: pip install 'report2label[vllm]'") from None
        lora: dict[str, Any] = {}
        self.lora: dict[str, Any] = {}  # LLM.chat's lora_request, with an adapter
        if options.adapter:
            from vllm.lora.request import LoRARequest

            adapter = Path(options.adapter).resolve()
            rank = json.loads((adapter / "adapter_config.json").read_text()).get("r", 16)
            supported = next((r for r in LORA_RANKS if r >= rank), rank)  # vLLM accepts these ranks
            lora = {"enable_lora": True, "max_lora_rank": supported}
            self.lora = {"lora_request": LoRARequest(adapter.name, 1, str(adapter))}
        self.llm = vllm.LLM(
            model=options.model,
            tensor_parallel_size=options.tensor_parallel_size,
            pipeline_parallel_size=options.pipeline_parallel_size,
            gpu_memory_utilization=options.gpu_memory_utilization,
            max_model_len=options.max_model_len,
            dtype=options.dtype,
            enforce_eager=options.enforce_eager,
            seed=options.seed,
            enable_prefix_caching=True,
            trust_remote_code=False,
            **lora,
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.fold = not supports_system(
            lambda messages: self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
        count = lambda text: len(self.tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
        self.max_tokens = options.max_tokens or answer_budget(task, count)
        self.sampling = sampling_params(vllm.sampling_params, task.answer_schema, self.max_tokens, options.seed)
        self.sampled = (
            sampling_params(
                vllm.sampling_params,
                task.answer_schema,
                self.max_tokens,
                options.seed + 1,
                temperature=options.sample_temperature,
                n=options.samples - 1,
            )
            if options.samples > 1
            else None
        )

    @property
    def model_id(self) -> str:
        name = Path(self.options.model).name
        if not self.options.adapter:
            return name
        weights = Path(self.options.adapter) / "adapter_model.safetensors"
        digest = file_sha256(weights)[:12] if weights.is_file() else "unhashed"
        return f"{name}+lora:{Path(self.options.adapter).resolve().name}@{digest}"

    @property
    def params(self) -> dict[str, Any]:
        return {
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "seed": self.options.seed,
            "structured": "json_schema",
            "folded_system": self.fold,
            "tensor_parallel_size": self.options.tensor_parallel_size,
            "adapter": self.options.adapter,
            "confidence": confidence_kind(self.options.samples, self.options.sample_temperature),
        }

    def conversations(self, requests: list[LabelRequest]) -> list[list[dict[str, str]]]:
        return [fold_system(r.messages) if self.fold else list(r.messages) for r in requests]

    def label(self, requests: list[LabelRequest]) -> list[str | RowFailure]:
        conversations = self.conversations(requests)
        limit = self.max_model_len - self.max_tokens
        lengths = [
            len(self.tokenizer.apply_chat_template(c, tokenize=True, add_generation_prompt=True)) for c in conversations
        ]
        answers: list[str | RowFailure] = [
            RowFailure(
                f"prompt has {n} tokens; with {self.max_tokens} for the answer it does not fit "
                f"max_model_len={self.max_model_len}"
            )
            for n in lengths
        ]
        fits = [i for i, n in enumerate(lengths) if n <= limit]
        if fits:
            chats = [conversations[i] for i in fits]
            outputs = self.llm.chat(chats, self.sampling, use_tqdm=False, **self.lora)
            samples = self.llm.chat(chats, self.sampled, use_tqdm=False, **self.lora) if self.sampled else None
            for j, (i, output) in enumerate(zip(fits, outputs, strict=True)):
                text = output.outputs[0].text
                if samples is not None:
                    answers[i] = Answer(text, agreement(self.task, text, [o.text for o in samples[j].outputs]))
                else:
                    answers[i] = Answer(text, self._confidence(text, output.outputs[0]))
        return answers

    def _confidence(self, text: str, completion: Any) -> dict[str, float] | None:
        """Per label the probability of its value tokens, from the chosen tokens' log-probabilities."""
        ids, logprobs = getattr(completion, "token_ids", None), getattr(completion, "logprobs", None)
        if not ids or not logprobs:
            return None
        tokens = [(step[t].decoded_token or "").encode() for t, step in zip(ids, logprobs, strict=True)]
        values = [step[t].logprob for t, step in zip(ids, logprobs, strict=True)]
        return token_confidence(text, list(zip(tokens, values, strict=True)), self.task.labels)


@hookimpl
def register_labelers(register) -> None:
    register(VLLMLabeler)
