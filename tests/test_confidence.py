"""Confidence per label: token probabilities (llama.cpp in process and behind its server, vLLM's logprobs),
the agreement of K samples, and the rules' certainty by mention status."""

import json
import math
import re
import types

import pandas as pd
import pytest
from conftest import write_reports

from report2label.core import label
from report2label.core.labelling.labeler import Answer, agreement, token_confidence, value_spans
from report2label.plugins.ankle_fracture import TASK

REPORTS = [
    "Weber-B-Fraktur der distalen Fibula.",
    "Keine Fraktur. Straße frei.",
    "V.a. Fissur am Innenknöchel.",
    "OSG ossär intakt.",
]


def test_value_spans_and_token_confidence():
    text = '{"fracture" : 1, "evidence": {"fracture": "Außenknöchel"}} '
    spans = value_spans(text)
    assert {k: text[a:b] for k, (a, b) in spans.items()} == {
        "fracture": "1",
        "evidence": '{"fracture": "Außenknöchel"}',
    }
    tokens = [(b'{"fracture" : ', -0.1), (b"1", -0.5), (', "evidence": {"fracture": "Außen'.encode(), -2.0)]
    tokens += [('knöchel"}} '.encode(), -1.0)]
    assert token_confidence(text, tokens, ["fracture"]) == pytest.approx({"fracture": math.exp(-0.5)})
    assert token_confidence(text, tokens[:-1], ["fracture"]) is None  # tokens that do not spell the answer
    assert token_confidence("1", [(b" ", -1.0), (b"1", -0.25)], ["fracture"]) == pytest.approx(
        {"fracture": math.exp(-0.25)}
    )  # a bare value; a leading space the detokenizer adds is skipped


def test_agreement_of_samples():
    chest_free = TASK
    assert agreement(chest_free, '{"fracture": 1}', ['{"fracture": 1}', '{"fracture": 0}', "garbage"]) == {
        "fracture": 0.5
    }
    assert agreement(chest_free, "not json", ['{"fracture": 1}']) is None


def test_llamacpp_stores_the_probability_of_each_chosen_value(tiny_gguf, tmp_path):
    pytest.importorskip("llama_cpp")
    import llama_cpp

    from report2label.plugins.backends.llamacpp import LlamaCppLabeler

    model = tiny_gguf["chatml"]
    reports = write_reports(tmp_path / "r.csv", REPORTS)
    options = {"model": str(model), "n_threads": 1}
    summary = label(
        "ankle-fracture", reports, tmp_path / "out", backend="llamacpp", options=options, show_progress=False
    )
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    labelled = labels[labels["status"] == "labelled"]
    assert summary.labelled == len(labelled) > 0
    assert ((labelled["fracture_confidence"] > 0) & (labelled["fracture_confidence"] <= 1)).all()
    assert '"confidence": "token_probability"' in labels["params"][0]

    # the same value from llama-cpp-python's own `logprobs` (which needs logits_all=True)
    labeler = LlamaCppLabeler(TASK, TASK.prompt(), LlamaCppLabeler.Options(**options))
    tokens = labeler.tokens(TASK.prompt().messages(REPORTS[0]))
    reference = llama_cpp.Llama(model_path=str(model), n_ctx=2048, n_threads=1, logits_all=True, verbose=False)
    try:
        out = reference.create_completion(
            tokens, max_tokens=labeler.max_tokens, temperature=0.0, top_k=1, grammar=labeler.grammar, logprobs=1
        )["choices"][0]
    finally:
        reference.close()
        labeler.close()
    assert out["text"] == labels["raw_answer"][0]
    value = re.search(r":\s*([01])", out["text"]).span(1)
    offsets = [offset - out["logprobs"]["text_offset"][0] for offset in out["logprobs"]["text_offset"]]
    ends = [*offsets[1:], len(out["text"])]
    chosen = [
        lp
        for start, end, lp in zip(offsets, ends, out["logprobs"]["token_logprobs"], strict=True)
        if start < value[1] and end > value[0]
    ]
    assert labels["fracture_confidence"][0] == pytest.approx(math.exp(sum(chosen)), rel=1e-3)


def test_openai_backend_stores_confidence_from_the_server_logprobs(llama_server, tmp_path):
    pytest.importorskip("openai")
    reports = write_reports(tmp_path / "r.csv", REPORTS)
    options = {"base_url": llama_server.url, "concurrency": 2}
    summary = label("ankle-fracture", reports, tmp_path / "out", backend="openai", options=options, show_progress=False)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    labelled = labels[labels["status"] == "labelled"]
    assert summary.labelled == len(labelled) > 0
    assert ((labelled["fracture_confidence"] > 0) & (labelled["fracture_confidence"] <= 1)).all()


def test_samples_store_the_agreement_of_k_answers(r2l, tiny_gguf, tmp_path):
    reports = write_reports(tmp_path / "r.csv", REPORTS[:2])
    args = ("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--backend", "llamacpp")
    result = r2l(*args, "--model", tiny_gguf["chatml"], "-O", "n_threads=1", "--samples", "3", "--no-progress")
    assert result.exit_code in (0, 3), result.output
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    labelled = labels[labels["status"] == "labelled"]
    assert len(labelled) > 0
    assert (
        labelled["fracture_confidence"]
        .map(lambda c: round(c * 3) in (1, 2, 3) and abs(c * 3 - round(c * 3)) < 1e-9)
        .all()
    )
    assert "agreement of 3 answers at temperature 0.7" in json.loads(labels["params"][0])["confidence"]
    refused = r2l("label", "ankle-fracture", reports, "-o", tmp_path / "rules", "--samples", "3")
    assert refused.exit_code == 1 and "backend 'rules': option 'samples'" in refused.output


def test_rules_certainty_by_mention_status(tmp_path):
    texts = ["Weber-B-Fraktur der Fibula.", "V.a. Fraktur des Innenknöchels.", "Keine Fraktur.", "OSG unauffällig."]
    label("ankle-fracture", write_reports(tmp_path / "r.csv", texts), tmp_path / "out", show_progress=False)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["fracture"].tolist() == [1, 1, 0, 0]
    assert labels["fracture_confidence"].tolist() == [1.0, 0.5, 1.0, 0.75]  # stated, uncertain, stated, none


def test_vllm_confidence_from_its_logprobs():
    from report2label.plugins.backends.vllm_offline import VLLMLabeler

    labeler = VLLMLabeler.__new__(VLLMLabeler)
    labeler.task = TASK
    step = lambda token, lp: {token: types.SimpleNamespace(logprob=lp, decoded_token=PIECES[token])}  # noqa: E731
    completion = types.SimpleNamespace(token_ids=[0, 1, 2], logprobs=[step(0, -0.1), step(1, -0.7), step(2, -0.2)])
    assert labeler._confidence('{"fracture": 1}', completion) == pytest.approx({"fracture": math.exp(-0.7)})
    assert labeler._confidence('{"fracture": 1}', types.SimpleNamespace(text="x")) is None
    assert isinstance(Answer("x", {"fracture": 0.5}), str)


PIECES = {0: '{"fracture": ', 1: "1", 2: "}"}
