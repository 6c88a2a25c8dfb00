"""The ``vllm`` labeler: offline, in-process batched inference on GPUs with vLLM.

Each call hands a whole batch to ``LLM.chat``; answers are constrained to the task's JSON Schema
(``StructuredOutputsParams`` since vLLM 0.12, ``GuidedDecodingParams`` before: one shim), with an
explicit ``max_tokens`` and no free whitespace. Prefix caching is on and the prompt puts the fixed
instructions first, so they are computed once. vllm is imported only when this backend is used.
Several GPUs: ``tensor_parallel_size`` within a process; data parallel: one process per GPU
group with ``r2l label --shard K/N`` on the same output folder.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import Field, field_validator

from report2label.core.errors import R2LError
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import Labeler, LabelRequest, RowFailure
from report2label.core.labelling.chat import fold_system, supports_system
from report2label.core.labelling.labeler import answer_budget


def sampling_params(module: ModuleType, schema: dict, max_tokens: int, seed: int) -> Any:
    """Greedy ``SamplingParams`` constrained to ``schema``, for vLLM before and after v0.12.

    ``module`` is ``vllm.sampling_params``.
    """
    common: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_tokens, "seed": seed}
    if hasattr(module, "StructuredOutputsParams"):
        constraint = module.StructuredOutputsParams(json=schema, disable_any_whitespace=True)
        return module.SamplingParams(**common, structured_outputs=constraint)
    constraint = module.GuidedDecodingParams(json=schema, disable_any_whitespace=True)
    return module.SamplingParams(**common, guided_decoding=constraint)


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

        @field_validator("model")
        @classmethod
        def _local(cls, value: str) -> str:
            if not Path(value).exists():
                raise ValueError(f"{value}: no such local model (the vllm backend never downloads)")
            return value

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        try:
            import vllm
            import vllm.sampling_params
        except ImportError:
            raise R2LError("the vllm backend needs vllm and a GPU: pip install 'report2label[vllm]'") from None
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
        )
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.fold = not supports_system(
            lambda messages: self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        )
        count = lambda text: len(self.tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
        self.max_tokens = options.max_tokens or answer_budget(task, count)
        self.sampling = sampling_params(vllm.sampling_params, task.answer_schema, self.max_tokens, options.seed)

    @property
    def model_id(self) -> str:
        return Path(self.options.model).name

    @property
    def params(self) -> dict[str, Any]:
        return {
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "seed": self.options.seed,
            "structured": "json_schema",
            "folded_system": self.fold,
            "tensor_parallel_size": self.options.tensor_parallel_size,
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
            outputs = self.llm.chat([conversations[i] for i in fits], self.sampling, use_tqdm=False)
            for i, output in zip(fits, outputs, strict=True):
                answers[i] = output.outputs[0].text
        return answers


@hookimpl
def register_labelers(register) -> None:
    register(VLLMLabeler)
