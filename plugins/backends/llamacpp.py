"""The ``llamacpp`` labeler: a local GGUF model through llama-cpp-python, answers constrained by a grammar.

The grammar is built explicitly from the task's JSON Schema, so a schema llama.cpp cannot express
is an error, never a silent fallback to free JSON. The chat template comes from the GGUF; where
it has no system role (Mistral, Mixtral) the instructions are folded into the first user turn.
The context is sized from the longest pending prompt; a report that cannot fit fails with the reason.
The context is not reset between reports: llama-cpp-python keeps the evaluated tokens the next prompt
starts with (the instructions and few-shot turns every report shares), and requests are taken in
token order so that neighbours share as long a prefix as possible.

Confidence: the probability of each label's value tokens, from the log-probabilities of the
generated tokens (softmax over the vocabulary, recorded by a logits processor: the same values
llama-cpp-python's ``logprobs`` gives, without keeping the logits of every prompt token); with
``samples=K``, the share of K answers (the greedy one and K-1 sampled) that agree with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from report2label.core.errors import R2LError
from report2label.core.hashing import file_sha256
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import Labeler, LabelRequest, RowFailure
from report2label.core.labelling.chat import Message, fold_system, supports_system
from report2label.core.labelling.labeler import Answer, agreement, answer_budget, confidence_kind, token_confidence

CORRECTION_TURNS = 2  # corrective exchanges the context leaves room for


@contextmanager
def suppress_stdout_stderr():
    """Silence llama.cpp's logging: file descriptors 1 and 2, and Python's sys.stderr it may write to."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null, redirect_stderr(null):
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


class TokenLogprobs:
    """A logits processor that records each generated token's log-probability (softmax over the vocabulary)."""

    def __init__(self) -> None:
        self.logprobs: list[float] = []
        self._last: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self._last is not None:  # the token chosen at the previous step is the last input now
            self.logprobs.append(float(self._last[int(input_ids[-1])]))
        self._last = scores - np.logaddexp.reduce(scores)
        return scores


def _import_llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        raise R2LError("the llamacpp backend needs llama-cpp-python: pip install 'report2label[llamacpp]'") from None
    return llama_cpp


class LlamaCppLabeler(Labeler):
    name = "llamacpp"
    description = "A local GGUF model (llama-cpp-python), grammar-constrained, greedy."
    batch_size = 8

    class Options(Labeler.Options):
        model: str = Field(description="Path of a GGUF file.")
        n_ctx: int | None = Field(None, ge=64, description="Context size; default: sized from the reports.")
        n_threads: int | None = Field(None, ge=1, description="Threads for generation (default: llama.cpp's).")
        n_threads_batch: int | None = Field(
            None, ge=1, description="Threads for prompt evaluation (default: n_threads, else llama.cpp's)."
        )
        n_gpu_layers: int = Field(0, description="Layers on the GPU (-1: all).")
        max_tokens: int | None = Field(None, ge=1, description="Answer budget; default: the task's longest answer.")
        seed: int = 0
        reuse_prefix: bool = Field(True, description="Keep the shared prompt prefix evaluated between reports.")
        samples: int = Field(
            1, ge=1, description="Answers per report; above 1 confidence is their agreement (self-consistency)."
        )
        sample_temperature: float = Field(0.7, gt=0, description="Temperature of the extra answers of samples > 1.")

        @field_validator("model")
        @classmethod
        def _exists(cls, value: str) -> str:
            path = Path(value)
            if not path.is_file():
                raise ValueError(f"{value}: no such GGUF file")
            with path.open("rb") as handle:
                if handle.read(4) != b"GGUF":
                    raise ValueError(f"{value}: not a GGUF file (it does not start with the GGUF magic bytes)")
            return value

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        llama_cpp = _import_llama_cpp()
        self._llama_cpp = llama_cpp
        path = Path(options.model)
        try:
            self.grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(task.answer_schema), verbose=False)
        except Exception as exc:
            raise R2LError(f"task {task.name!r}: its answer schema cannot be turned into a grammar: {exc}") from None
        with suppress_stdout_stderr():  # a vocab-only load warns about its (absent) training context
            self.vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        arch = self.vocab.metadata.get("general.architecture", "llama")
        self.n_ctx_train = int(self.vocab.metadata.get(f"{arch}.context_length", 4096))
        template = self.vocab.metadata.get("tokenizer.chat_template")
        if not template:
            raise R2LError(f"{path}: the GGUF has no chat template (tokenizer.chat_template)")
        token = self.vocab._model.token_get_text
        self.formatter = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=token(self.vocab.token_eos()), bos_token=token(self.vocab.token_bos())
        )
        self.fold = not supports_system(self.render)
        count = lambda text: len(self.vocab.tokenize(text.encode(), add_bos=False, special=False))  # noqa: E731
        self.max_tokens = options.max_tokens or answer_budget(task, count)
        self._model_id = f"{path.name}@sha256:{file_sha256(path)[:16]}"
        self.llm: Any = None
        self.n_ctx = options.n_ctx

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def params(self) -> dict[str, Any]:
        return {
            "temperature": 0,
            "top_k": 1,
            "max_tokens": self.max_tokens,
            "seed": self.options.seed,
            "grammar": "json_schema",
            "n_ctx": self.n_ctx,
            "folded_system": self.fold,
            "confidence": confidence_kind(self.options.samples, self.options.sample_temperature),
        }

    def render(self, messages: list[Message]) -> str:
        """The prompt text the model sees for ``messages``, by the GGUF's chat template."""
        return self.formatter(messages=messages).prompt

    def tokens(self, messages: Sequence[Message]) -> list[int]:
        prompt = self.render(fold_system(messages) if self.fold else list(messages))
        return self.vocab.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.tokens(messages))

    def prepare(self, reports: Sequence[str]) -> None:
        if not reports:
            return
        if self.n_ctx is None:
            longest = max(len(self.tokens(self.prompt.messages(text))) for text in reports)
            first = self.prompt.messages(reports[0])
            corrected = first + self.prompt.corrective_turns("x" * 8, "y" * 40, self.task.answer_schema)
            per_turn = len(self.tokens(corrected)) - len(self.tokens(first)) + self.max_tokens
            needed = longest + self.max_tokens + CORRECTION_TURNS * per_turn
            self.n_ctx = min(self.n_ctx_train, -(-needed // 256) * 256)
        self._load()

    def _load(self) -> None:
        if self.llm is None:
            self.n_ctx = self.n_ctx or min(self.n_ctx_train, 4096)
            self.llm = self._llama_cpp.Llama(
                model_path=self.options.model,
                n_ctx=self.n_ctx,
                n_threads=self.options.n_threads,
                n_threads_batch=self.options.n_threads_batch or self.options.n_threads,
                n_gpu_layers=self.options.n_gpu_layers,
                seed=self.options.seed,
                verbose=False,
            )

    def label(self, requests: list[LabelRequest]) -> list[str | RowFailure]:
        self._load()
        prompts = [self.tokens(request.messages) for request in requests]
        answers: list[str | RowFailure] = [""] * len(requests)
        for i in sorted(range(len(prompts)), key=prompts.__getitem__):  # neighbours share the longest prefixes
            answers[i] = self._answer(prompts[i])
        return answers

    def _answer(self, tokens: list[int]) -> str | RowFailure:
        """One greedy, grammar-constrained answer with its confidence; a cached prefix is not evaluated again."""
        if len(tokens) + self.max_tokens > self.n_ctx:
            return RowFailure(
                f"prompt has {len(tokens)} tokens; with {self.max_tokens} for the answer it does not "
                f"fit the context of {self.n_ctx} tokens"
            )
        if not self.options.reuse_prefix:
            self.llm.reset()
        recorder = TokenLogprobs()
        out = self.llm.create_completion(
            tokens,
            max_tokens=self.max_tokens,
            temperature=0.0,
            top_k=1,
            grammar=self.grammar,
            logits_processor=self._llama_cpp.LogitsProcessorList([recorder]),
        )
        text = out["choices"][0]["text"]
        if self.options.samples > 1:
            return Answer(text, agreement(self.task, text, self._samples(tokens)))
        generated = self.llm._input_ids[len(tokens) :].tolist()[: len(recorder.logprobs)]
        pieces = [self.llm.detokenize([token]) for token in generated]
        return Answer(
            text, token_confidence(text, list(zip(pieces, recorder.logprobs, strict=False)), self.task.labels)
        )

    def _samples(self, tokens: list[int]) -> list[str]:
        """``samples - 1`` answers sampled at ``sample_temperature``, seeded ``seed + 1``, ``seed + 2``, ..."""
        return [
            self.llm.create_completion(
                tokens,
                max_tokens=self.max_tokens,
                temperature=self.options.sample_temperature,
                grammar=self.grammar,
                seed=self.options.seed + k,
            )["choices"][0]["text"]
            for k in range(1, self.options.samples)
        ]

    def close(self) -> None:
        for llm in (self.llm, self.vocab):
            if llm is not None:
                llm.close()
        self.llm = None


@hookimpl
def register_labelers(register) -> None:
    register(LlamaCppLabeler)
