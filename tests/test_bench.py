"""The benchmarks run and print their side-by-side rows (speed is reported, never asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_label_throughput_prints_both_methods_and_the_ratio():
    pytest.importorskip("llama_cpp")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "label_throughput.py"), "--n", "6", "--baseline-asks", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "study: sequential, free, re-ask" in run.stdout
    assert "report2label llamacpp: batched, constrained" in run.stdout and "100.0%" in run.stdout
    assert "ratio (report2label / study method):" in run.stdout


def test_label_throughput_against_its_own_llama_cpp_server_at_two_concurrencies():
    pytest.importorskip("llama_cpp.server")
    pytest.importorskip("openai")
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "label_throughput.py"),
            "--backend",
            "openai",
            "--n",
            "3",
            "--baseline-asks",
            "1",
            "--concurrency",
            "1",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "report2label openai: concurrency 1, constrained" in run.stdout
    assert "report2label openai: concurrency 2, constrained" in run.stdout


def test_engine_overhead_prints_raw_and_report2label_side_by_side():
    pytest.importorskip("llama_cpp")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine_overhead.py"), "--n", "3", "--cold"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "raw llama-cpp-python, report order" in run.stdout and "raw llama-cpp-python, token order" in run.stdout
    assert "r2l label --backend llamacpp, reuse_prefix=false" in run.stdout
    assert "overhead of report2label against the faster raw run:" in run.stdout
    assert "raw answers identical to raw llama-cpp-python: 3/3 (report order), 3/3 (token order)" in run.stdout
    assert "raw answers identical with and without prefix reuse: 3/3" in run.stdout


def test_train_throughput_prints_loader_and_training_rates():
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "train_throughput.py"),
            "--sizes",
            "32",
            "48",
            "--batch-size",
            "2",
            "--steps",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.splitlines() if line.strip()[:2] in ("32", "48")]
    assert [row[0] for row in rows] == ["32", "48"] and all(len(row) == 4 for row in rows)


def test_onnx_latency_prints_eager_and_onnxruntime_side_by_side():
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "onnx_latency.py"), "--size", "64", "--batches", "1", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    rows = {" ".join(line.split()[:2]): line.split()[2:] for line in run.stdout.splitlines() if line.strip()}
    for contender in ("pytorch eager", "onnxruntime float", "int8 best", "int8 study"):
        assert rows[contender][1].endswith("x"), run.stdout
    assert rows["int8 best"][2].endswith("%"), "decision agreement with the float model"


def test_rules_speed_prints_ankle_and_chest_rates():
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rules_speed.py"), "--n", "40"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "compiling both rule sets:" in run.stdout
    assert "ankle, 40 reports: label()" in run.stdout and "without its sentence cache" in run.stdout
    assert "chest (13 findings), 40 reports: engine" in run.stdout


def test_rules_quality_without_the_shared_file_says_so_and_exits_0(tmp_path):
    missing = tmp_path / "absent.csv"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "rules_quality.py"), "--data", str(missing)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert f"{missing} not found" in run.stdout and "nothing measured" in run.stdout


def test_label_scale_prints_both_engines_and_identical_labels():
    pytest.importorskip("ray")
    pytest.importorskip("llama_cpp")
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "label_scale.py"), "--n", "400", "--llm-n", "6"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "rules, 400 reports: in-process" in run.stdout and "ray (2 actors)" in run.stdout
    assert run.stdout.count("labels.csv identical: True") == 2, run.stdout
