"""The ``openai`` labeler: any OpenAI-compatible server (vLLM, llama.cpp, Ollama, a hospital gateway).

Requests run ``concurrency`` at a time, by default as many as the server has parallel slots (what
llama.cpp's server reports at ``/props``; 8 where a server does not say); the first request of a
run goes alone, so that the prompt prefix every report shares is in the server's prefix cache
before the others arrive. The openai client retries connection errors, 429 and 5xx with
exponential backoff; a report whose request still fails becomes a ``failed`` row (a rerun
asks again). Structured output: ``json_schema`` (OpenAI, vLLM), ``json_object`` with a schema
(llama.cpp's server, which answers HTTP 500 to the former), ``none``, or ``auto``: the first mode
the server accepts. Answers are validated whatever the mode. Confidence: the probability of each
label's value tokens from the server's ``logprobs``; with ``samples=K`` the agreement of K answers.
Report texts go only to loopback or private addresses unless ``allow_remote`` is set.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from report2label.core.errors import R2LError
from report2label.core.hookspecs import hookimpl
from report2label.core.labelling import Labeler, LabelRequest, RowFailure
from report2label.core.labelling.chat import fold_system
from report2label.core.labelling.labeler import Answer, agreement, answer_budget, confidence_kind, token_confidence
from report2label.core.privacy import check_endpoint

Mode = Literal["json_schema", "json_object", "none"]
AUTO_ORDER: tuple[Mode, ...] = ("json_schema", "json_object", "none")
DEFAULT_CONCURRENCY = 8


def only_model(client, base_url: str) -> str:
    """The one model that ``client``'s server serves; an error naming them when it serves none or several."""
    import openai

    try:
        models = [m.id for m in client.models.list()]
    except openai.OpenAIError as exc:
        raise R2LError(f"{base_url}: cannot list the server's models: {exc}") from None
    if len(models) != 1:
        raise R2LError(f"{base_url} serves {len(models)} models ({', '.join(models)}); choose with --model")
    return models[0]


class OpenAILabeler(Labeler):
    name = "openai"
    description = "Any OpenAI-compatible server: vLLM, llama.cpp, Ollama, a gateway (loopback/private by default)."
    batch_size = 64

    class Options(Labeler.Options):
        allow_remote: bool = Field(False, description="Allow a server outside loopback and private networks.")
        base_url: str = Field("http://127.0.0.1:8000/v1", description="The server's OpenAI API root.")
        api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key.")
        concurrency: int | None = Field(
            None, ge=1, description="Requests in flight at once; default: the server's parallel slots, else 8."
        )
        timeout: float = Field(120.0, gt=0, description="Seconds per request.")
        retries: int = Field(4, ge=0, description="Retries with backoff on connection errors, 429 and 5xx.")
        structured: Literal["auto", "json_schema", "json_object", "none"] = "auto"
        fold_system: bool = Field(False, description="Send the instructions in the user turn (Mistral/Mixtral).")
        max_tokens: int | None = Field(
            None, ge=1, description="Answer budget; default: the bytes of the task's longest answer."
        )
        seed: int = 0
        logprobs: bool = Field(
            True, description="Ask for token log-probabilities (confidence); off for servers without."
        )
        samples: int = Field(
            1, ge=1, description="Answers per report; above 1 confidence is their agreement (self-consistency)."
        )
        sample_temperature: float = Field(0.7, gt=0, description="Temperature of the extra answers of samples > 1.")

        @field_validator("base_url")
        @classmethod
        def _private(cls, value: str, info: ValidationInfo) -> str:
            check_endpoint(value, info.data.get("allow_remote", False))
            return value.rstrip("/")

    def __init__(self, task, prompt, options) -> None:
        super().__init__(task, prompt, options)
        try:
            import openai
        except ImportError:
            raise R2LError("the openai backend needs the openai client: pip install 'report2label[openai]'") from None
        self.openai = openai
        self.client = openai.OpenAI(
            base_url=options.base_url,
            api_key=os.environ.get(options.api_key_env) or "none",
            timeout=options.timeout,
            max_retries=options.retries,
        )
        self.model = options.model or only_model(self.client, self.options.base_url)
        self.max_tokens = options.max_tokens or answer_budget(task)
        self.concurrency = options.concurrency or self._server_slots() or DEFAULT_CONCURRENCY
        self._primed = False
        self.mode: Mode | None = None if options.structured == "auto" else options.structured
        self._mode_lock = threading.Lock()
        self.schema_name = re.sub(r"[^a-zA-Z0-9_-]", "_", task.name)

    def _server_slots(self) -> int | None:
        """The parallel slots the server reports (llama.cpp's ``GET /props``: ``total_slots``), or None."""
        root = re.sub(r"/v1$", "", self.options.base_url)
        props = urllib.request.Request(f"{root}/props", headers={"Authorization": f"Bearer {self.client.api_key}"})
        try:
            with urllib.request.urlopen(props, timeout=min(self.options.timeout, 10.0)) as response:
                slots = json.load(response).get("total_slots")
        except (OSError, ValueError, AttributeError):  # no such endpoint, not JSON, not an object
            return None
        return slots if isinstance(slots, int) and slots > 0 else None

    @property
    def model_id(self) -> str:
        return self.model

    @property
    def params(self) -> dict[str, Any]:
        return {
            "server": self.options.base_url,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "seed": self.options.seed,
            "structured": self.mode,
            "folded_system": self.options.fold_system,
            "confidence": confidence_kind(self.options.samples, self.options.sample_temperature)
            if self.options.logprobs or self.options.samples > 1
            else None,
        }

    def _format(self, mode: Mode) -> dict[str, Any]:
        schema = self.task.answer_schema
        if mode == "json_schema":
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": self.schema_name, "schema": schema, "strict": True},
                }
            }
        if mode == "json_object":
            return {"response_format": {"type": "json_object", "schema": schema}}
        return {}

    def _complete(self, request: LabelRequest, mode: Mode, client: Any, sample: int = 0) -> str:
        """The greedy answer (``sample`` 0) with its token confidence, or the ``sample``-th sampled answer."""
        messages = fold_system(request.messages) if self.options.fold_system else list(request.messages)
        logprobs = self.options.logprobs and sample == 0 and self.options.samples == 1
        response = client.chat.completions.create(
            model=self.model,
            messages=messages,
            temperature=self.options.sample_temperature if sample else 0,
            max_tokens=self.max_tokens,
            seed=self.options.seed + sample,
            **({"logprobs": True, "top_logprobs": 1} if logprobs else {}),
            **self._format(mode),
        )
        choice = response.choices[0]
        text = choice.message.content or ""
        if sample == 0 and self.options.samples > 1:
            samples = [self._complete(request, mode, client, k) for k in range(1, self.options.samples)]
            return Answer(text, agreement(self.task, text, samples))
        content = getattr(choice.logprobs, "content", None) if logprobs else None
        if not content:
            return text
        tokens = [(bytes(t.bytes) if t.bytes is not None else t.token.encode(), t.logprob) for t in content]
        return Answer(text, token_confidence(text, tokens, self.task.labels))

    def _probe(self, request: LabelRequest) -> str | RowFailure | None:
        """Try the structured-output modes in turn on a real request; keep the first the server accepts.

        None: the server could not be reached, so nothing was learnt.
        """
        quick = self.client.with_options(max_retries=0)
        for mode in AUTO_ORDER:
            try:
                answer = self._complete(request, mode, quick)
            except self.openai.APIStatusError as exc:
                rejected = exc
                continue
            except self.openai.APIConnectionError:
                return None
            self.mode = mode
            return answer
        self.mode = "none"
        return RowFailure(f"HTTP {rejected.status_code} from {self.options.base_url}: {str(rejected.message)[:200]}")

    def _ask(self, request: LabelRequest) -> str | RowFailure:
        with self._mode_lock:
            if self.mode is None:
                probed = self._probe(request)
                if probed is not None:
                    return probed
        try:
            return self._complete(request, self.mode or AUTO_ORDER[0], self.client)
        except self.openai.APIStatusError as exc:
            return RowFailure(f"HTTP {exc.status_code} from {self.options.base_url}: {str(exc.message)[:200]}")
        except self.openai.APIConnectionError as exc:
            return RowFailure(f"{self.options.base_url} unreachable after {self.options.retries} retries: {exc}")

    def label(self, requests: list[LabelRequest]) -> list[str | RowFailure]:
        answers: list[str | RowFailure] = []
        if requests and not self._primed:  # alone: the shared prefix reaches the server's cache first
            answers.append(self._ask(requests[0]))
            self._primed = True
        with ThreadPoolExecutor(self.concurrency) as pool:
            answers += pool.map(self._ask, requests[len(answers) :])
        return answers

    def close(self) -> None:
        self.client.close()


@hookimpl
def register_labelers(register) -> None:
    register(OpenAILabeler)
