"""The transformers backend on a real (random-weight, tiny) Llama in Hugging Face layout, on the CPU."""

import json
from pathlib import Path

import pandas as pd
import pytest

from report2label.core import label, registry
from report2label.core.errors import R2LError
from report2label.core.labelling import LabelRequest

pytest.importorskip("xgrammar")
pytest.importorskip("transformers")

from report2label.plugins.backends.transformers_local import TransformersLabeler  # noqa: E402

REPORTS = [
    "Keine Fraktur.",
    "Weber-B-Fraktur der distalen Fibula mit Dislokation des Fragments um Schaftbreite.",
    "OSG in zwei Ebenen: regelrechte Artikulation, keine Fraktur, kein Erguss, Weichteile unauffällig.",
]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    from report2label.testing.random_hf import write_random_llama

    return write_random_llama(tmp_path_factory.mktemp("hf") / "tiny-llama", std=0.3)  # answers depend on prompts


def test_answers_are_schema_valid_on_the_first_attempt(tiny_llama, tmp_path):
    reports = tmp_path / "r.csv"
    pd.DataFrame({"report_id": ["a", "b", "c"], "text": REPORTS}).to_csv(reports, index=False)
    summary = label(
        "ankle-fracture", reports, tmp_path / "out", backend="transformers", options={"model": str(tiny_llama)}
    )
    assert summary.labelled == 3 and summary.backend_calls == 3, "constrained: no answer needs a re-ask"
    table = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert set(table["fracture"]) <= {0, 1} and (table["model"] == "tiny-llama").all()
    params = json.loads(table["params"].iloc[0])
    assert params["structured"] == "json_schema (xgrammar)" and params["temperature"] == 0 and params["device"] == "cpu"


def test_a_batch_answers_as_single_requests_do(tiny_llama):
    """Left padding and the attention mask: a report's answer does not depend on its batch neighbours."""
    task = registry.task("impression")
    backend = TransformersLabeler(task, task.prompt(), TransformersLabeler.Options(model=str(tiny_llama), max_tokens=8))
    requests = [LabelRequest(str(i), text, tuple(task.prompt().messages(text))) for i, text in enumerate(REPORTS)]
    batched = backend.label(requests)
    assert batched == [backend.label([request])[0] for request in requests]
    assert len(set(batched)) > 1, "a random model writes different texts for different reports"


def test_the_chat_template_comes_from_the_tokenizer(tiny_llama):
    task = registry.task("ankle-fracture")
    backend = TransformersLabeler(task, task.prompt(), TransformersLabeler.Options(model=str(tiny_llama)))
    text = backend.prompt_text(task.prompt().messages("Keine Fraktur."))
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    one_token_each = text.replace("<|im_start|>", "S").replace("<|im_end|>", "E")  # special tokens; other bytes
    assert backend.count_tokens(task.prompt().messages("Keine Fraktur.")) == len(one_token_each.encode())


def test_a_model_folder_is_required_and_never_downloaded(r2l, tmp_path):
    reports = tmp_path / "r.csv"
    pd.DataFrame({"report_id": ["a"], "text": ["Keine Fraktur."]}).to_csv(reports, index=False)
    result = r2l("label", "ankle-fracture", reports, "-o", tmp_path / "out", "--backend", "transformers",
                 "--model", "meta-llama/Llama-3.1-8B-Instruct")  # fmt: skip
    assert result.exit_code == 1
    assert "no such local model folder (the transformers backend never downloads)" in result.output
    assert not (tmp_path / "out").exists()


def test_a_tokenizer_without_chat_template_is_refused(tiny_llama, tmp_path):
    import shutil

    folder = Path(shutil.copytree(tiny_llama, tmp_path / "no-template"))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["chat_template"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    task = registry.task("ankle-fracture")
    with pytest.raises(R2LError, match="no-template: its tokenizer has no chat template"):
        TransformersLabeler(task, task.prompt(), TransformersLabeler.Options(model=str(folder)))
