"""Labelling throughput: a report2label backend against the study's method, side by side in one run.

The study's method, as a baseline on the same model and reports: one report at a time, free
(unconstrained) generation, re-asking with the answer-shape instruction whenever the answer is
invalid (bounded here by --baseline-asks; the original had no bound). Ours: the engine with the
backend's batching and constrained decoding. Both are timed from loading the backend (model load
included) to the last answer. With ``--repeats`` the methods alternate and the best run of each
counts, so that a busy moment on a shared machine does not hit one only. Prints reports per
second, the share of reports with a valid label, model calls per report, and the ratio.

The openai backend runs once per ``--concurrency`` (requests in flight), side by side. Without a
``base_url`` the benchmark starts a llama.cpp server (``python -m llama_cpp.server``) on 127.0.0.1
with the GGUF of ``--model`` (default: a random tiny one) and stops it at the end.

    python bench/label_throughput.py --backend llamacpp --n 40            # random tiny GGUF, CPU
    python bench/label_throughput.py --backend llamacpp --model m.gguf --reports reports.csv
    python bench/label_throughput.py --backend openai --model m.gguf --concurrency 1 4   # own server
    python bench/label_throughput.py --model SmolLM2-135M-Instruct.Q4_1.gguf --n 40 --repeats 3
    python bench/label_throughput.py --backend openai -O base_url=http://127.0.0.1:8000/v1
    python bench/label_throughput.py --backend vllm --model /models/llama-3.1-8b-instruct
    python bench/label_throughput.py --write-model /tmp/llama8b --model-size 8b   # random 8B, HF layout
    python bench/label_throughput.py --backend vllm --model /tmp/llama8b --n 2000
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from report2label.core import label, registry
from report2label.core.labelling import LabelRequest
from report2label.core.labelling.engine import build_options
from report2label.plugins.ankle_fracture.example import write_example


def free_text(backend, messages: list[dict]) -> str:
    """One unconstrained answer from the backend's own model (the study's way of asking)."""
    if backend.name == "llamacpp":
        backend.llm.reset()
        out = backend.llm.create_completion(  # the same answer budget as constrained decoding (never unbounded)
            backend.tokens(messages), max_tokens=backend.max_tokens, temperature=0.0, top_k=1
        )
        return out["choices"][0]["text"]
    if backend.name == "openai":
        return backend._complete(LabelRequest("-", "", tuple(messages)), "none", backend.client)
    if backend.name == "vllm":
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=backend.options.max_tokens)
        [conversation] = backend.conversations([LabelRequest("-", "", tuple(messages))])
        return backend.llm.chat([conversation], params, use_tqdm=False)[0].outputs[0].text
    raise SystemExit(f"no baseline for backend {backend.name!r}")


def baseline(task, cls, options: dict, prompt_name: str, texts: list[str], max_asks: int) -> dict:
    """The study's method with the backend's own model, timed from loading it to the last answer."""
    start, valid, asks = time.perf_counter(), 0, 0
    backend = cls(task, task.prompt(prompt_name), build_options(cls, options))
    backend.prepare(texts)
    prompt = backend.prompt
    for text in texts:
        messages = prompt.messages(text)
        for _ in range(max_asks):
            asks += 1
            try:
                raw = free_text(backend, messages)
            except ValueError:  # the growing conversation no longer fits the context: give up on it
                break
            checked = task.validate_answer(raw)
            if checked.answer is not None:
                valid += 1
                break
            messages += prompt.corrective_turns(raw, checked.reason or "", task.answer_schema)
    backend.close()
    seconds = time.perf_counter() - start
    return {
        "method": "study: sequential, free, re-ask",
        "reports": len(texts),
        "seconds": seconds,
        "valid": valid / len(texts),
        "calls_per_report": asks / len(texts),
    }


def ours(task_name: str, reports: Path, backend: str, options: dict, workdir: Path) -> dict:
    summary = label(task_name, reports, workdir, backend=backend, options=options, show_progress=False)
    how = f"concurrency {options['concurrency']}" if backend == "openai" else "batched"
    return {
        "method": f"report2label {backend}: {how}, constrained",
        "reports": summary.total,
        "seconds": summary.seconds,
        "valid": summary.labelled / summary.total,
        "calls_per_report": summary.backend_calls / summary.total,
    }


@contextmanager
def llama_server(model: str, n_ctx: int = 4096, threads: int | None = None) -> Iterator[str]:
    """A llama.cpp server (``python -m llama_cpp.server``) on 127.0.0.1 for the block; yields its API root.

    llama-cpp-python's server has no parallel slots (no ``--n_parallel``/``--parallel`` option): it
    holds one ``Llama`` behind a lock and answers one request at a time, so ``--concurrency`` > 1
    only overlaps HTTP and client work with decoding. For concurrent decoding, run llama.cpp's own
    ``llama-server --parallel N`` (or vLLM) and pass ``-O base_url=...``.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1"]
    if threads:
        command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--n_ctx", str(n_ctx)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the llama.cpp server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.kill()
        process.wait()


def compare(args: argparse.Namespace, options: dict, table: pd.DataFrame, work: Path) -> list[dict]:
    """The study's method, then report2label (once per concurrency for openai), on the same reports.

    With ``args.repeats`` > 1 the methods alternate that many times; the fastest run of each counts.
    """
    task = registry.task("ankle-fracture")
    cls = registry.labeler(args.backend)
    texts = table["text"].tolist()
    runs = [{**options, "concurrency": c} for c in args.concurrency] if args.backend == "openai" else [options]
    best: list[dict | None] = [None] * (1 + len(runs))
    for repeat in range(args.repeats):
        rows = [baseline(task, cls, options, args.prompt, texts, args.baseline_asks)]
        for i, run in enumerate(runs):
            rows.append(ours("ankle-fracture", work / "reports.csv", args.backend, run, work / f"ours-{repeat}-{i}"))
        best = [
            row if old is None or row["seconds"] < old["seconds"] else old for old, row in zip(best, rows, strict=True)
        ]
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="llamacpp", choices=["llamacpp", "openai", "vllm"])
    parser.add_argument("--model", help="GGUF file, server model name or local model folder (default: random GGUF)")
    parser.add_argument("-O", "--option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--reports", type=Path, help="reports table (default: the synthetic ankle example)")
    parser.add_argument("--n", type=int, default=40, help="reports to label")
    parser.add_argument("--prompt", default="de-zero-shot")
    parser.add_argument("--baseline-asks", type=int, default=5, help="bound on the baseline's re-asks")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="openai: requests in flight")
    parser.add_argument("--threads", type=int, help="n_threads and n_threads_batch of the server this starts")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each method; the best counts")
    parser.add_argument("--write-model", type=Path, help="write a random-weight Llama (HF layout) here and stop")
    parser.add_argument("--model-size", default="8b", choices=["8b", "tiny"])
    args = parser.parse_args()
    if args.write_model:
        from report2label.testing.random_hf import SIZES, write_random_llama

        write_random_llama(args.write_model, args.model_size)
        print(f"random Llama ({SIZES[args.model_size].parameters:,} parameters) in {args.write_model}")
        return

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        options = {
            k: json.loads(v) if v[:1] in "0123456789[{tf" else v for k, v in (o.split("=", 1) for o in args.option)
        }
        own_server = args.backend == "openai" and "base_url" not in options
        model = args.model
        if model is None and (args.backend == "llamacpp" or own_server):
            from report2label.testing.random_gguf import write_random_gguf

            model = str(write_random_gguf(work / "random.gguf"))
        source = args.reports
        if source is None:
            write_example(work / "example", seed=1, n_reports=args.n, image_size=64)
            source = work / "example" / "reports.csv"
        table = pd.read_csv(source).head(args.n)
        table.to_csv(work / "reports.csv", index=False)
        if own_server:
            with llama_server(model, threads=args.threads) as url:
                rows = compare(args, {**options, "base_url": url}, table, work)
        else:
            rows = compare(args, {**options, "model": model} if model else options, table, work)

    print(f"backend {args.backend}, model {model or '(server default)'}, {len(table)} reports")
    print(f"{'method (best of ' + str(args.repeats) + ')':<50} {'reports/s':>10} {'valid':>7} {'calls/report':>13}")
    for row in rows:
        print(
            f"{row['method']:<50} {row['reports'] / row['seconds']:>10.2f} {row['valid']:>7.1%} "
            f"{row['calls_per_report']:>13.2f}"
        )
    for row in rows[1:]:
        speed = (row["reports"] / row["seconds"]) / (rows[0]["reports"] / rows[0]["seconds"])
        print(f"ratio (report2label / study method): {speed:.2f}x reports/s ({row['method']})")


if __name__ == "__main__":
    main()
