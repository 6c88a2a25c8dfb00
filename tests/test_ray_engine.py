"""r2l label --engine ray: a real local Ray (2 CPUs), shared by the tests of this module.

The scripted labeler of tests/fake_plugin.py (installed as ``r2l_fake`` on PYTHONPATH, which the Ray
workers inherit) logs every report it is asked, so the tests can count backend calls. vLLM needs a
GPU, so its test runs the ``vllm`` backend on the actors against a stand-in ``vllm`` package that
only the Ray workers see (as tests/test_vllm_backend.py does in-process).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from collections import Counter
from dataclasses import replace

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import HERE, R2L, write_reports
from fake_plugin import TASK as SMOKE

from report2label.core import Labeler, label, registry
from report2label.core.labelling.engine import CARRIED, checked_run
from report2label.core.labelling.folder import LabelFolder
from report2label.core.plugins import pm
from report2label.plugins.engines.ray_engine import BlockLabeler, read_parts

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")


VLLM_STANDIN = """
import os, pathlib, types
from . import sampling_params


class Tokenizer:
    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        text = "".join(m["content"] for m in messages)
        return list(text) if tokenize else text

    def encode(self, text, add_special_tokens):
        return list(text)


class LLM:
    def __init__(self, **kwargs):
        with open(pathlib.Path(__file__).parent / "llm.log", "a") as log:
            log.write(f"{os.getpid()} {kwargs['model']} {kwargs['tensor_parallel_size']}\\n")
        self.llm_engine = types.SimpleNamespace(model_config=types.SimpleNamespace(max_model_len=4096))

    def get_tokenizer(self):
        return Tokenizer()

    def chat(self, conversations, sampling, use_tqdm, **kwargs):
        answer = types.SimpleNamespace(text='{"fracture": 1}')
        return [types.SimpleNamespace(outputs=[answer]) for _ in conversations]
"""
VLLM_SAMPLING = """
class SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


StructuredOutputsParams = SamplingParams
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray with 2 CPUs whose workers can import the outside plugin ``r2l_fake``; its address."""
    site = tmp_path_factory.mktemp("site")
    shutil.copy(HERE / "fake_plugin.py", site / "r2l_fake.py")
    (site / "r2l_fake-0.3.dist-info").mkdir()
    (site / "r2l_fake-0.3.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: r2l-fake\nVersion: 0.3\n")
    (site / "r2l_fake-0.3.dist-info" / "entry_points.txt").write_text("[report2label]\nfake = r2l_fake\n")
    standin = tmp_path_factory.mktemp("standin")
    (standin / "vllm").mkdir()
    (standin / "vllm" / "__init__.py").write_text(VLLM_STANDIN)
    (standin / "vllm" / "sampling_params.py").write_text(VLLM_SAMPLING)
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), str(standin), saved]))
    sys.path.insert(0, str(site))
    context = ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield types.SimpleNamespace(address=context.address_info["gcs_address"], vllm_log=standin / "vllm" / "llm.log")
    ray.shutdown()
    sys.path.remove(str(site))
    if saved is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = saved
    if pm.has_plugin("fake"):
        pm.unregister(name="fake")
    sys.modules.pop("r2l_fake", None)


def without_time(labels: pd.DataFrame) -> pd.DataFrame:
    return labels.drop(columns="labelled_at")


def test_ray_labels_like_the_in_process_engine(cluster, small_example, tmp_path):
    """The same labels.csv (every column but the time) and summary as the local engine; bad rows fail alone."""
    reports = pd.read_csv(small_example / "reports.csv", dtype=str)
    extra = pd.DataFrame({"report_id": ["empty", "long"], "text": ["  ", "Fraktur. " * 200]})
    table = pd.concat([reports[["report_id", "text"]]] * 4, ignore_index=True)
    table["report_id"] = [f"{i}-{r}" for i, r in enumerate(table["report_id"])]
    path = tmp_path / "reports.csv"
    pd.concat([table, extra]).to_csv(path, index=False)
    local = label("ankle-fracture", path, tmp_path / "local", max_chars=1000, show_progress=False)
    ray_run = label(
        "ankle-fracture",
        path,
        tmp_path / "ray",
        max_chars=1000,
        batch_size=10,
        engine="ray",
        engine_options={"actors": 2},
        show_progress=False,
    )
    expected = without_time(pd.read_csv(tmp_path / "local" / "labels.csv", dtype=str))
    got = without_time(pd.read_csv(tmp_path / "ray" / "labels.csv", dtype=str))
    pd.testing.assert_frame_equal(got, expected)
    assert (expected["status"] == "labelled").sum() == len(table)
    assert set(expected.loc[expected["status"] == "failed", "report_id"]) == {"empty", "long"}
    for field in ("total", "labelled", "failed", "reused", "asked", "backend_calls", "label_counts", "failure_reasons"):
        assert getattr(ray_run, field) == getattr(local, field), field
    assert len(LabelFolder(tmp_path / "ray").part_files()) == -(-len(table) // 10) + 1  # blocks, prechecked rows
    again = label("ankle-fracture", path, tmp_path / "ray", max_chars=1000, engine="ray", show_progress=False)
    assert (again.reused, again.asked, again.backend_calls, again.failed) == (len(table), 0, 0, 2)  # no call


def test_ray_labels_a_four_state_task_like_the_in_process_engine(cluster, tmp_path):
    """13 findings in four states, a finding's evidence often empty for a whole block: the label columns the actors
    make and store in their parts give the same labels.csv as the in-process engine's."""
    registry.example("chest-xray")(tmp_path / "example", seed=3, n_reports=40, image_size=32)
    path = tmp_path / "example" / "reports.csv"
    label("chest-xray", path, tmp_path / "local", show_progress=False)
    options = {"actors": 2}
    label("chest-xray", path, tmp_path / "ray", batch_size=7, engine="ray", engine_options=options, show_progress=False)
    expected = without_time(pd.read_csv(tmp_path / "local" / "labels.csv", dtype=str))
    got = without_time(pd.read_csv(tmp_path / "ray" / "labels.csv", dtype=str))
    pd.testing.assert_frame_equal(got, expected)
    assert {"not_mentioned", "negative"} <= set(expected["pneumothorax"]) and "positive" in set(
        expected["cardiomegaly"]
    )
    assert expected["pneumothorax_evidence"].isna().any() and expected["pneumothorax_confidence"].notna().all()


def test_ray_reads_the_report_table_from_a_store_url(cluster, store, tmp_path):
    """An archive in an object store (a real S3 server on 127.0.0.1): the driver reads it by URL."""
    texts = ["Fraktur des Innenknöchels.", "Kein Frakturnachweis.", "Fraktur?"] * 5
    local = write_reports(tmp_path / "reports.csv", texts)
    url = store.put(local, "ray/reports.csv")
    label("ankle-fracture", local, tmp_path / "local", show_progress=False)
    options = {"actors": 2}
    label(
        "ankle-fracture", url, tmp_path / "ray", batch_size=4, engine="ray", engine_options=options, show_progress=False
    )
    expected = without_time(pd.read_csv(tmp_path / "local" / "labels.csv", dtype=str))
    pd.testing.assert_frame_equal(without_time(pd.read_csv(tmp_path / "ray" / "labels.csv", dtype=str)), expected)


def run_command(outdir, reports, log, address) -> list[str]:
    return [
        *R2L,
        "label",
        "smoke-test",
        str(reports),
        "-o",
        str(outdir),
        "--backend",
        "fake",
        "-O",
        f"log={log}",
        "-O",
        "delay=0.3",
        "--batch-size",
        "2",
        "--engine",
        "ray",
        "--address",
        address,
        "--no-progress",
    ]


def asked(log) -> list[str]:
    return [json.loads(line)["id"] for line in log.read_text().splitlines()] if log.exists() else []


def settled(folder: LabelFolder) -> int:
    """The number of parts once no more arrive (the actors of a killed driver are stopped by Ray)."""
    count, since = -1, time.monotonic()
    while time.monotonic() - since < 2:
        now = len(folder.part_files())
        count, since = now, since if now == count else time.monotonic()
        time.sleep(0.1)
    return count


def test_driver_sigkill_then_rerun_labels_each_report_once(cluster, tmp_path):
    """SIGKILL the driver halfway: the rerun asks only for reports without a stored result."""
    n = 40
    reports = write_reports(tmp_path / "notes.csv", [f"note {i}: smoke" if i % 3 else f"note {i}" for i in range(n)])
    out, log = tmp_path / "out", tmp_path / "calls.jsonl"
    folder = LabelFolder(out)
    command = run_command(out, reports, log, cluster.address)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and len(folder.part_files()) < 4:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()[-3000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    settled(folder)
    stored = read_parts(folder, _key(folder), SMOKE)
    before = set(stored.loc[stored["status"] == "labelled", "report_id"])
    assert 0 < len(before) < n, "the kill must land halfway"
    calls_before = len(asked(log))
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"{len(before)} already stored, {n - len(before)} asked ({n - len(before)} backend calls)" in rerun.stdout
    again = asked(log)[calls_before:]
    assert sorted(again) == sorted({f"r{i}" for i in range(n)} - before)  # each missing report once, no stored one
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    assert sorted(labels["report_id"]) == sorted(f"r{i}" for i in range(n)) and (labels["status"] == "labelled").all()
    assert labels["smoke"].tolist() == ["0" if i % 3 == 0 else "1" for i in range(n)]


def _key(folder: LabelFolder):
    from report2label.core.labelling.store import KEY, RunKey

    first = pd.read_parquet(folder.part_files()[0])
    return RunKey(*(first[field].iloc[0] for field in KEY))


def block_labelers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0].startswith("ray::BlockLabeler"):
            found.append(process)
    return found


def test_killed_actor_loses_no_rows(cluster, tiny_gguf, tmp_path):
    """os.kill one of two llama.cpp actors mid-run: Ray restarts it, its blocks are asked again, none is lost."""
    n = 40
    reports = write_reports(tmp_path / "r.csv", [f"Befund {i}: Weber-B-Fraktur. " * 30 for i in range(n)])
    out = tmp_path / "out"
    folder = LabelFolder(out)
    outcome = {}

    def run() -> None:
        outcome["summary"] = label(
            "ankle-fracture",
            reports,
            out,
            backend="llamacpp",
            options={"model": str(tiny_gguf["chatml"]), "n_threads": 1},
            batch_size=2,
            engine="ray",
            engine_options={"actors": 2},
            show_progress=False,
        )

    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.is_alive():
            actors = block_labelers()
            if len(actors) == 2 and len(folder.part_files()) >= 2:  # both actors up, some blocks stored
                break
            time.sleep(0.05)
        parts_at_kill = len(folder.part_files())
        assert worker.is_alive() and len(actors) == 2 and parts_at_kill < n // 2, "the kill must land mid-run"
        os.kill(actors[0].pid, signal.SIGKILL)
    finally:
        worker.join(timeout=300)
    summary = outcome["summary"]
    assert (summary.total, summary.labelled, summary.failed) == (n, n, 0)
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    assert Counter(labels["report_id"]) == Counter(f"r{i}" for i in range(n))
    assert (labels["status"] == "labelled").all()
    assert len(folder.part_files()) == n // 2  # a retried block rewrites its own part
    assert not block_labelers()  # the run's actors are gone


def test_engine_errors_are_one_line(cluster, r2l, tmp_path):
    reports = write_reports(tmp_path / "r.csv", ["Fraktur.", "Kein Befund."])
    base = ["label", "ankle-fracture", reports, "-o", tmp_path / "out", "--no-progress"]
    cases = {
        ("--engine", "nope"): "Error: unknown labelling engine 'nope' (available: local, ray)",
        ("--actors", "2"): "Error: engine 'local': option 'actors': Extra inputs are not permitted",
        ("--engine", "ray", "--shard", "1/2"): "Error: --shard is for the local engine",
        ("--engine", "ray", "--actors", "3"): "Error: 3 actors with 1 CPU each need 3 CPUs; the Ray cluster has 2",
        ("--engine", "ray", "--address", "93.184.216.34:6379"): "Error: Ray address 93.184.216.34:6379: 93.184",
    }
    for extra, message in cases.items():
        result = r2l(*base, *extra)
        assert result.exit_code == 1 and message in result.output, (extra, result.output)
    assert not (tmp_path / "out").exists()  # nothing was stored, so no folder is left behind
    plan = r2l(*base, "--engine", "ray", "--plan")
    assert plan.exit_code == 2 and "--plan plans the local engine" in plan.output


def test_vllm_replicas_run_on_the_actors(cluster, tmp_path):
    """One vLLM engine per actor, with the tensor-parallel size asked for; the driver builds none."""
    model = tmp_path / "model"
    model.mkdir()
    reports = write_reports(tmp_path / "r.csv", [f"Befund {i}: Weber-B-Fraktur." for i in range(12)])
    summary = label(
        "ankle-fracture",
        reports,
        tmp_path / "out",
        backend="vllm",
        options={"model": str(model), "tensor_parallel_size": 2},
        batch_size=2,
        engine="ray",
        engine_options={"actors": 2},
        show_progress=False,
    )
    assert (summary.labelled, summary.backend_calls) == (12, 12)
    assert set(pd.read_csv(tmp_path / "out" / "labels.csv")["fracture"]) == {1}
    engines = [line.split() for line in cluster.vllm_log.read_text().splitlines()]
    pids = {int(pid) for pid, _, _ in engines}
    assert len(engines) == 2 and len(pids) == 2 and os.getpid() not in pids
    assert all(path == str(model) and size == "2" for _, path, size in engines)


class Flaky(Labeler):
    """Raises on any batch holding the report ``bad`` (a backend crashing on one report)."""

    name = "flaky"
    uses_prompt = False

    def label(self, requests):
        if any(r.report_id == "bad" for r in requests):
            raise RuntimeError("the backend fell over")
        return ['{"fracture": 1}' for _ in requests]


def test_a_report_the_backend_raises_on_fails_alone(tmp_path):
    """In an actor (used here in-process), a block that raises is asked row by row; only its bad row fails."""
    reports = write_reports(tmp_path / "r.csv", ["Fraktur.", "Fraktur?", "Fraktur!"], ["a", "bad", "c"])
    args = ("rules", {}, None, None, "report_id", "text", 3, None)
    run = checked_run("ankle-fracture", reports, tmp_path / "out", *args)
    run = replace(run, cls=Flaky, options=Flaky.Options())
    run.folder.create()
    actor = BlockLabeler(replace(run, table=run.table.iloc[:0]), 3, [])
    assert actor.label(run.table[["report_id", "text", "text_hash"]]) == (3, 3)
    stored = read_parts(run.folder, actor.key, run.spec).set_index("report_id")
    assert stored["status"].to_dict() == {"a": "labelled", "bad": "failed", "c": "labelled"}
    assert stored.loc["bad", "reason"] == "backend error: RuntimeError: the backend fell over"


def test_a_part_without_label_columns_gets_them_when_read(tmp_path):
    """A part stored before actors made labels.csv's label columns reads as one that has them."""
    reports = write_reports(tmp_path / "r.csv", ["Fraktur.", "Keine Fraktur.", "V.a. Fraktur"], ["a", "b", "c"])
    args = ("rules", {}, None, None, "report_id", "text", 3, None)
    run = checked_run("ankle-fracture", reports, tmp_path / "out", *args)
    run.folder.create()
    actor = BlockLabeler(replace(run, table=run.table.iloc[:0]), 3, [])
    actor.label(run.table[["report_id", "text", "text_hash"]])
    made = read_parts(run.folder, actor.key, run.spec)
    [part] = run.folder.part_files()
    stored = pq.read_table(part)
    pq.write_table(stored.drop_columns([c for c in stored.column_names if c.startswith(CARRIED)]), part)
    pd.testing.assert_frame_equal(read_parts(run.folder, actor.key, run.spec), made)
    assert made[CARRIED + "fracture"].tolist() == [1, 0, 1]
