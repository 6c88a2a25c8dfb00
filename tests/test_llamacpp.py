"""The llamacpp backend with a real llama.cpp and a random-weight GGUF: valid shapes, resume, templates."""

import signal
import subprocess
import time

import pandas as pd
import pytest
from conftest import R2L, stored_rows, write_reports
from pydantic import BaseModel

from report2label.core import TaskSpec, label
from report2label.core.errors import R2LError
from report2label.core.labelling import LabelRequest
from report2label.core.labelling.chat import fold_system
from report2label.plugins.ankle_fracture import TASK

llama_cpp = pytest.importorskip("llama_cpp")
from report2label.plugins.backends.llamacpp import LlamaCppLabeler  # noqa: E402


def labeler(model, prompt="de-zero-shot", **options):
    return LlamaCppLabeler(TASK, TASK.prompt(prompt), LlamaCppLabeler.Options(model=str(model), **options))


def test_labels_every_example_report_with_schema_valid_answers(tiny_gguf, small_example, tmp_path):
    summary = label(
        "ankle-fracture",
        small_example / "reports.csv",
        tmp_path / "out",
        backend="llamacpp",
        options={"model": str(tiny_gguf["chatml"])},
        show_progress=False,
    )
    assert (summary.labelled, summary.failed) == (24, 0)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["fracture"].isin([0, 1]).all() and (labels["attempts"] == 1).all()
    assert all(TASK.validate_answer(raw).answer is not None for raw in labels["raw_answer"])
    assert labels["model"][0].startswith("tiny-chatml.gguf@sha256:")
    assert '"grammar": "json_schema"' in labels["params"][0] and '"temperature": 0' in labels["params"][0]


def test_instructions_reach_a_model_without_system_role(tiny_gguf):
    messages = TASK.prompt("de-few-shot").messages("Weber-B-Fraktur.")
    instructions = messages[0]["content"]
    with_system = labeler(tiny_gguf["chatml"])
    assert not with_system.fold
    mistral = labeler(tiny_gguf["mistral"])
    assert mistral.fold
    with pytest.raises(Exception, match="System role not supported"):
        mistral.render(messages)
    for backend in (with_system, mistral):
        seen = backend.vocab.detokenize(backend.tokens(messages), special=True).decode()
        assert instructions in seen and "Weber-B-Fraktur." in seen
        assert seen.index(instructions) < seen.index("Weber-B-Fraktur.")
        backend.close()
    assert fold_system(messages)[0] == {"role": "user", "content": f"{instructions}\n\n{messages[1]['content']}"}


def test_context_is_sized_from_the_reports_and_overlong_reports_fail(tiny_gguf, tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur.", "Weber-B-Fraktur der distalen Fibula. " * 60])
    probe = labeler(tiny_gguf["chatml"])
    n_ctx = len(probe.tokens(TASK.prompt().messages("Keine Fraktur."))) + 64 + 32
    probe.close()
    summary = label(
        "ankle-fracture",
        path,
        tmp_path / "out",
        backend="llamacpp",
        show_progress=False,
        options={"model": str(tiny_gguf["chatml"]), "n_ctx": n_ctx},
    )
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["status"].tolist() == ["labelled", "failed"] and summary.failed == 1
    assert f"does not fit the context of {n_ctx} tokens" in labels["reason"][1]
    sized = labeler(tiny_gguf["chatml"])
    sized.prepare(["Keine Fraktur.", "Weber-B-Fraktur der distalen Fibula. " * 60])
    longest = len(sized.tokens(TASK.prompt().messages("Weber-B-Fraktur der distalen Fibula. " * 60)))
    assert longest + 64 < sized.n_ctx <= 4096 and sized.n_ctx % 256 == 0
    sized.close()


def evaluated_tokens(backend: LlamaCppLabeler) -> list[int]:
    """Record the number of tokens each llama.cpp evaluation of ``backend`` takes."""
    counts, evaluate = [], backend.llm.eval

    def counted(tokens):
        counts.append(len(tokens))
        evaluate(tokens)

    backend.llm.eval = counted
    return counts


def test_prefix_reuse_answers_as_a_cold_context_and_skips_the_shared_prefix(tiny_gguf, small_example):
    # shortened prompts and reports: the cold context evaluates every prompt in full
    texts = [text[:100] for text in pd.read_csv(small_example / "reports.csv")["text"]]
    few_shot = TASK.prompt("de-few-shot")
    prompt = few_shot.model_copy(
        update={"instructions": few_shot.instructions[:150], "examples": few_shot.examples[:1]}
    )
    asks = [LabelRequest(f"r{i}", text, tuple(prompt.messages(text))) for i, text in enumerate(texts)]
    correction = tuple(prompt.corrective_turns('{"fracture": 2}', "field 'fracture': bad", TASK.answer_schema))
    reasks = [LabelRequest(r.report_id, r.report, r.messages + correction) for r in asks[::4]]
    batches = [asks[:12], asks[12:], reasks]  # across batches, then corrective re-asks
    answers, evaluated = {}, {}
    for reuse in (True, False):
        options = LlamaCppLabeler.Options(model=str(tiny_gguf["chatml"]), reuse_prefix=reuse)
        backend = LlamaCppLabeler(TASK, prompt, options)
        backend.prepare(texts)
        counts = evaluated_tokens(backend)
        answers[reuse] = [answer for batch in batches for answer in backend.label(batch)]
        evaluated[reuse] = sum(counts)
        first, second = backend.tokens(asks[0].messages), backend.tokens(asks[1].messages)
        backend.close()
    assert answers[True] == answers[False] and len(set(answers[True])) > 1
    shared = next(i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b)
    assert shared > 200, "the instructions and the few-shot turn are the shared prefix"
    assert evaluated[False] - evaluated[True] >= (len(asks) + len(reasks) - 1) * shared


def test_unsupported_schema_is_an_error_not_a_fallback(tiny_gguf):
    class Odd(BaseModel):
        x: int

        @classmethod
        def model_json_schema(cls, *args, **kwargs):
            return {"type": "object", "properties": {"x": {"not": {"type": "string"}}}}

    task = TaskSpec(
        name="odd",
        version="1",
        description="d",
        languages=("en",),
        prompts=(TASK.prompt("de-zero-shot"),),
        answer_model=Odd,
    )
    with pytest.raises(R2LError, match="answer schema cannot be turned into a grammar"):
        LlamaCppLabeler(task, task.prompt(), LlamaCppLabeler.Options(model=str(tiny_gguf["chatml"])))


def test_missing_model_file_is_named(tmp_path):
    path = write_reports(tmp_path / "r.csv", ["Keine Fraktur."])
    with pytest.raises(R2LError, match="option 'model': nope.gguf: no such GGUF file"):
        label("ankle-fracture", path, tmp_path / "out", backend="llamacpp", options={"model": "nope.gguf"})


def test_sigkill_halfway_then_rerun_asks_only_for_missing_rows(tiny_gguf, tmp_path):
    reports = write_reports(tmp_path / "r.csv", [f"Befund {i}: Weber-B-Fraktur. " * 30 for i in range(40)])
    out = tmp_path / "out"
    args = [
        *R2L,
        "label",
        "ankle-fracture",
        str(reports),
        "-o",
        str(out),
        "--backend",
        "llamacpp",
        "--model",
        str(tiny_gguf["chatml"]),
        "--batch-size",
        "2",
        "--no-progress",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and stored_rows(out / "labels.sqlite") < 10:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = stored_rows(out / "labels.sqlite", "labelled")
    assert 0 < before < 40, "the kill must land halfway"
    rerun = subprocess.run(args, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{before} already stored, {40 - before} asked ({40 - before} backend calls)" in rerun.stdout
    labels = pd.read_csv(out / "labels.csv")
    assert len(labels) == 40 and (labels["status"] == "labelled").all()
