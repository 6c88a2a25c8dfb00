"""Engine overhead: raw llama-cpp-python used well against ``r2l label --backend llamacpp``, side by side.

All label the same reports with the same GGUF, prompt, grammar (from the task's JSON Schema),
context size and greedy decoding, and all keep the prompt prefix the reports share evaluated.
Raw: render the chat template, tokenize, ``create_completion`` without resetting the context, the
reports in their own order and, better still, all of them in token order (neighbours share the
longest prefixes). report2label: ``report2label.core.label`` with everything it does besides
(model hash, context sizing, answer validation, the SQLite store, the CSV). Each is timed from
start to answers, model load included, by wall clock and by this process's CPU time; with
``--repeats`` they alternate and the best of each counts. Prints reports/s, the overhead against
the faster raw run in percent and whether the raw answers are identical.

    python bench/engine_overhead.py                     # a random tiny GGUF it writes itself
    python bench/engine_overhead.py --model SmolLM2-135M-Instruct.Q4_1.gguf --n 40 --repeats 3 --cold
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import pandas as pd
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from report2label.core import label, registry
from report2label.plugins.ankle_fracture.example import write_example
from report2label.plugins.backends.llamacpp import LlamaCppLabeler

TASK = "ankle-fracture"
RAW, SORTED, OURS, COLD = (
    "raw llama-cpp-python, report order",
    "raw llama-cpp-python, token order",
    "r2l label --backend llamacpp",
    "r2l label --backend llamacpp, reuse_prefix=false",
)


@dataclass
class Run:
    """One labelling of the reports: wall-clock and process CPU seconds, raw answers in report order."""

    wall: float
    cpu: float
    answers: list[str]


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, answers: list[str]) -> Run:
        return Run(time.perf_counter() - self.wall, time.process_time() - self.cpu, answers)


def raw_llama_cpp(model: str, prompt: str, texts: list[str], n_ctx: int, threads: int | None, sort: bool) -> Run:
    """Label ``texts`` with llama-cpp-python alone, in report order or in token order."""
    clock = Clock()
    task = registry.task(TASK)
    variant = task.prompt(prompt)
    llm = llama_cpp.Llama(model_path=model, n_ctx=n_ctx, n_threads=threads, seed=0, verbose=False)
    grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(task.answer_schema), verbose=False)
    token = llm._model.token_get_text
    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=token(llm.token_eos()),
        bos_token=token(llm.token_bos()),
    )
    prompts = [
        llm.tokenize(formatter(messages=variant.messages(text)).prompt.encode("utf-8"), add_bos=False, special=True)
        for text in texts
    ]
    answers = [""] * len(texts)
    for i in sorted(range(len(prompts)), key=prompts.__getitem__) if sort else range(len(prompts)):
        out = llm.create_completion(prompts[i], max_tokens=64, temperature=0.0, top_k=1, grammar=grammar)
        answers[i] = out["choices"][0]["text"]
    run = clock.stop(answers)
    llm.close()
    return run


def report2label(reports: Path, outdir: Path, options: dict, prompt: str) -> Run:
    """Label with ``report2label.core.label``, store and CSV included."""
    clock = Clock()
    label(TASK, reports, outdir, backend="llamacpp", options=options, prompt=prompt, show_progress=False)
    run = clock.stop([])
    run.answers = pd.read_csv(outdir / "labels.csv", keep_default_na=False)["raw_answer"].tolist()
    return run


def context_size(model: str, prompt: str, texts: list[str]) -> int:
    """The context ``r2l label`` sizes for these reports (loading the model once also warms the page cache)."""
    task = registry.task(TASK)
    labeler = LlamaCppLabeler(task, task.prompt(prompt), LlamaCppLabeler.Options(model=model))
    labeler.prepare(texts)
    labeler.close()
    return labeler.n_ctx


def identical(a: Run, b: Run) -> str:
    return f"{sum(x == y for x, y in zip(a.answers, b.answers, strict=True))}/{len(a.answers)}"


def measure(methods: dict[str, Callable[[int], Run]], repeats: int) -> dict[str, list[Run]]:
    """Run every method ``repeats`` times, alternating, so that a busy moment does not hit one only."""
    runs: dict[str, list[Run]] = {name: [] for name in methods}
    for i in range(repeats):
        for name, method in methods.items():
            runs[name].append(method(i))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="GGUF file (default: a random tiny one written here)")
    parser.add_argument("--n", type=int, default=40, help="synthetic ankle reports to label")
    parser.add_argument("--prompt", default="de-zero-shot")
    parser.add_argument("--threads", type=int, help="n_threads of all (default: llama-cpp-python's)")
    parser.add_argument("--repeats", type=int, default=1, help="alternating runs of each; the best counts")
    parser.add_argument("--cold", action="store_true", help="also run report2label with reuse_prefix=false")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from report2label.testing.random_gguf import write_random_gguf

            model = str(write_random_gguf(work / "random.gguf"))
        write_example(work / "example", seed=1, n_reports=args.n, image_size=64)
        reports = work / "example" / "reports.csv"
        texts = pd.read_csv(reports)["text"].tolist()
        n_ctx = context_size(model, args.prompt, texts)
        options = {"model": model, "n_threads": args.threads}
        methods = {
            RAW: lambda i: raw_llama_cpp(model, args.prompt, texts, n_ctx, args.threads, sort=False),
            SORTED: lambda i: raw_llama_cpp(model, args.prompt, texts, n_ctx, args.threads, sort=True),
            OURS: lambda i: report2label(reports, work / f"r2l-{i}", options, args.prompt),
        }
        if args.cold:
            cold = {**options, "reuse_prefix": False}
            methods[COLD] = lambda i: report2label(reports, work / f"cold-{i}", cold, args.prompt)
        runs = measure(methods, args.repeats)

    print(f"model {Path(model).name}, {len(texts)} reports, prompt {args.prompt}, n_ctx {n_ctx}")
    print(f"{'method (best of ' + str(args.repeats) + ')':<50} {'reports/s':>10} {'reports/CPU-s':>14}")
    wall = {name: len(texts) / min(r.wall for r in rs) for name, rs in runs.items()}
    cpu = {name: len(texts) / min(r.cpu for r in rs) for name, rs in runs.items()}
    for name in runs:
        print(f"{name:<50} {wall[name]:>10.2f} {cpu[name]:>14.2f}")
    print(
        f"overhead of report2label against the faster raw run: {(max(wall[RAW], wall[SORTED]) / wall[OURS] - 1):+.1%}"
        f" (wall clock), {(max(cpu[RAW], cpu[SORTED]) / cpu[OURS] - 1):+.1%} (CPU time)"
    )
    print(
        f"raw answers identical to raw llama-cpp-python: {identical(runs[OURS][0], runs[RAW][0])} (report order), "
        f"{identical(runs[OURS][0], runs[SORTED][0])} (token order)"
    )
    if args.cold:
        print(f"raw answers identical with and without prefix reuse: {identical(runs[OURS][0], runs[COLD][0])}")


if __name__ == "__main__":
    main()
