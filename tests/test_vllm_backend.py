"""The vllm backend's request building, without vllm (it needs a GPU): stand-in modules record the calls.

An end-to-end test runs only where vllm and a CUDA GPU are present.
"""

import importlib.util
import sys
import types

import pytest

from report2label.core import label
from report2label.core.labelling import LabelRequest, RowFailure
from report2label.plugins.ankle_fracture import TASK
from report2label.plugins.backends.vllm_offline import VLLMLabeler, sampling_params


class Recorder:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class MixtralTokenizer:
    """Rejects a system role, like Mixtral's chat template; one token per character."""

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        if messages[0]["role"] == "system":
            raise ValueError("Conversation roles must alternate user/assistant/user/assistant/...")
        text = "".join(f"[{m['role']}]{m['content']}" for m in messages)
        return list(text) if tokenize else text

    def encode(self, text, add_special_tokens):
        return list(text)


class FakeLLM:
    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=1500))
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return MixtralTokenizer()

    def chat(self, conversations, sampling, use_tqdm):
        self.calls.append((conversations, sampling))
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text='{"fracture": 1}')]) for _ in conversations]


def fake_vllm(monkeypatch, new_api: bool):
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.SamplingParams = Recorder
    if new_api:
        sampling.StructuredOutputsParams = Recorder
    else:
        sampling.GuidedDecodingParams = Recorder
    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.sampling_params = FakeLLM, sampling
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    return sampling


@pytest.mark.parametrize("new_api, field", [(True, "structured_outputs"), (False, "guided_decoding")])
def test_sampling_params_shim(monkeypatch, new_api, field):
    module = fake_vllm(monkeypatch, new_api)
    params = sampling_params(module, TASK.answer_schema, max_tokens=32, seed=5)
    assert params.kwargs["temperature"] == 0.0 and params.kwargs["max_tokens"] == 32 and params.kwargs["seed"] == 5
    constraint = params.kwargs[field].kwargs
    assert constraint == {"json": TASK.answer_schema, "disable_any_whitespace": True}


def test_engine_settings_and_batched_prefix_friendly_requests(monkeypatch, tmp_path):
    fake_vllm(monkeypatch, new_api=True)
    (tmp_path / "model").mkdir()
    options = VLLMLabeler.Options(model=str(tmp_path / "model"), tensor_parallel_size=2, max_tokens=16)
    backend = VLLMLabeler(TASK, TASK.prompt(), options)
    engine = FakeLLM.instances[-1].kwargs
    assert engine["enable_prefix_caching"] is True and engine["trust_remote_code"] is False
    assert engine["tensor_parallel_size"] == 2 and engine["model"] == str(tmp_path / "model")
    assert backend.fold, "Mixtral-like template: instructions go into the user turn"
    requests = [
        LabelRequest(f"r{i}", text, tuple(TASK.prompt().messages(text)))
        for i, text in enumerate(["Keine Fraktur.", "Weber B.", "x" * 2000])
    ]
    answers = backend.label(requests)
    assert answers[:2] == ['{"fracture": 1}'] * 2
    assert isinstance(answers[2], RowFailure) and "does not fit max_model_len=1500" in answers[2]
    [(conversations, sampling)] = FakeLLM.instances[-1].calls
    assert len(conversations) == 2, "one batched call; the overlong report is not sent"
    instructions = TASK.prompt().instructions
    assert all(c[0]["role"] == "user" and c[0]["content"].startswith(instructions) for c in conversations)
    assert sampling.kwargs["max_tokens"] == 16


def test_answer_budget_defaults_to_the_tokens_of_the_longest_answer(monkeypatch, tmp_path):
    from report2label.plugins.chest_xray import TASK as CHEST

    fake_vllm(monkeypatch, new_api=True)
    (tmp_path / "model").mkdir()
    chest = VLLMLabeler(CHEST, CHEST.prompt(), VLLMLabeler.Options(model=str(tmp_path / "model")))
    assert chest.sampling.kwargs["max_tokens"] == len(CHEST.longest_answer) + 8 > 400, "one token per character"
    ankle = VLLMLabeler(TASK, TASK.prompt(), VLLMLabeler.Options(model=str(tmp_path / "model")))
    assert ankle.sampling.kwargs["max_tokens"] == len('{ "fracture": 0 }') + 8


def test_labels_through_the_engine(monkeypatch, tmp_path):
    fake_vllm(monkeypatch, new_api=False)
    (tmp_path / "model").mkdir()
    reports = tmp_path / "r.csv"
    reports.write_text("report_id,text\na,Keine Fraktur.\nb,Weber B.\n")
    summary = label(
        "ankle-fracture",
        reports,
        tmp_path / "out",
        backend="vllm",
        options={"model": str(tmp_path / "model")},
        show_progress=False,
    )
    assert summary.labelled == 2 and summary.backend_calls == 2


class LoraLLM(FakeLLM):
    """Also takes ``lora_request``, as vLLM's ``LLM.chat`` does."""

    def chat(self, conversations, sampling, use_tqdm, lora_request=None):
        self.lora = lora_request
        return super().chat(conversations, sampling, use_tqdm)


def test_a_lora_adapter_is_served_with_every_batch(monkeypatch, tmp_path):
    fake_vllm(monkeypatch, new_api=True)
    sys.modules["vllm"].LLM = LoraLLM
    lora = types.ModuleType("vllm.lora.request")
    lora.LoRARequest = lambda name, number, path: (name, number, path)
    monkeypatch.setitem(sys.modules, "vllm.lora", types.ModuleType("vllm.lora"))
    monkeypatch.setitem(sys.modules, "vllm.lora.request", lora)
    (tmp_path / "model").mkdir()
    adapter = tmp_path / "ankle-lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"r": 12, "lora_alpha": 16}')
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    options = VLLMLabeler.Options(model=str(tmp_path / "model"), adapter=str(adapter))
    backend = VLLMLabeler(TASK, TASK.prompt(), options)
    llm = FakeLLM.instances[-1]
    assert llm.kwargs["enable_lora"] is True and llm.kwargs["max_lora_rank"] == 16, "the next rank vLLM accepts"
    backend.label([LabelRequest("r", "Weber B.", tuple(TASK.prompt().messages("Weber B.")))])
    assert llm.lora == ("ankle-lora", 1, str(adapter.resolve()))
    assert backend.model_id.startswith("model+lora:ankle-lora@") and backend.params["adapter"] == str(adapter)
    with pytest.raises(ValueError, match="not a local LoRA adapter folder"):
        VLLMLabeler.Options(model=str(tmp_path / "model"), adapter=str(tmp_path))


def test_vllm_never_downloads(tmp_path):
    with pytest.raises(Exception, match="no such local model"):
        VLLMLabeler.Options(model="mistralai/Mixtral-8x7B-Instruct-v0.1")


def _gpu() -> bool:
    if importlib.util.find_spec("vllm") is None or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _gpu(), reason="needs vllm and a CUDA GPU")
def test_vllm_end_to_end_on_gpu(tmp_path):
    import os

    model = os.environ.get("R2L_VLLM_MODEL")
    if not model:
        pytest.skip("set R2L_VLLM_MODEL to a local model folder")
    reports = tmp_path / "r.csv"
    reports.write_text("report_id,text\na,Keine Fraktur.\nb,Weber-B-Fraktur.\n")
    summary = label("ankle-fracture", reports, tmp_path / "out", backend="vllm", options={"model": model})
    assert summary.labelled + summary.failed == 2
