"""The in-process engine against ``--engine ray``, side by side in one run, on the same reports.

Labels N synthetic German ankle reports (the example study's generator) with the ``rules``
backend in this process and on Ray actors (batches of 1,024 both ways), then M reports with the
``llamacpp`` backend on a random-weight tiny GGUF (written here): in-process with ``--threads``
llama.cpp threads (default 1), on the actors with 1 thread each. Each run reads
the table, stores every result and writes ``labels.csv``. A local Ray with ``--cpus`` CPUs is
started once before the timed runs, as a cluster is started once (``ray start --head``); its
start-up is printed apart. ``--address`` uses a running cluster instead.

    python bench/label_scale.py                          # 100,000 rules reports, 2,000 llamacpp reports
    python bench/label_scale.py --n 20000 --llm-n 200
    python bench/label_scale.py --address 10.0.0.5:6379 --cpus 64
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import ray

from report2label.core import label
from report2label.plugins.ankle_fracture import TASK
from report2label.plugins.ankle_fracture.example import CASES, WEIGHTS, _report


def ankle_reports(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic German ankle reports, drawn like the example study's."""
    rng = np.random.default_rng(seed)
    p = WEIGHTS / WEIGHTS.sum()
    return [_report(rng, CASES[rng.choice(len(CASES), p=p)]) for _ in range(n)]


def timed(reports: Path, outdir: Path, **settings) -> float:
    """Reports per second of one whole ``label`` run (read, label, store, labels.csv)."""
    start = time.perf_counter()
    summary = label(TASK, reports, outdir, show_progress=False, **settings)
    seconds = time.perf_counter() - start
    assert summary.labelled + summary.failed == summary.total and summary.asked == summary.total, summary
    return summary.total / seconds


def side_by_side(name: str, reports: Path, tmp: Path, actors: int, local: dict, actor: dict) -> None:
    """The in-process engine with ``local`` settings against ``actors`` Ray actors with ``actor``."""
    here = timed(reports, tmp / "local", **local)
    there = timed(reports, tmp / "ray", engine="ray", engine_options={"actors": actors}, **actor)
    same = pd.read_csv(tmp / "local" / "labels.csv").drop(columns="labelled_at")
    other = pd.read_csv(tmp / "ray" / "labels.csv").drop(columns="labelled_at")
    print(f"{name}: in-process {here:,.1f} reports/s, ray ({actors} actors) {there:,.1f} reports/s")
    print(f"  ratio ray / in-process {there / here:.2f}x; labels.csv identical: {same.equals(other)}")
    shutil.rmtree(tmp / "local")
    shutil.rmtree(tmp / "ray")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="reports for the rules backend")
    parser.add_argument("--llm-n", type=int, default=2_000, help="reports for the llamacpp backend (0: skip)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray, one actor each")
    parser.add_argument("--address", help="a running Ray cluster instead of a local one")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads of the in-process run")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    start = time.perf_counter()
    settings = {"logging_level": logging.WARNING, "log_to_driver": False}
    if args.address:
        ray.init(address=args.address, **settings)
    else:
        # As the engine starts a local Ray: workers at the driver's priority (Ray's default is nice 15).
        ray.init(num_cpus=args.cpus, include_dashboard=False, _system_config={"worker_niceness": 0}, **settings)
    print(f"Ray start-up (once per cluster, not in the figures below): {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        reports = tmp / "reports.csv"
        texts = ankle_reports(max(args.n, args.llm_n))
        table = pd.DataFrame({"report_id": [f"R{i}" for i in range(len(texts))], "text": texts})
        table.head(args.n).to_csv(reports, index=False)
        batch = {"batch_size": 1024}
        side_by_side(f"rules, {args.n:,} reports", reports, tmp, args.cpus, batch, batch)
        if args.llm_n:
            from report2label.testing.random_gguf import write_random_gguf

            model = str(write_random_gguf(tmp / "tiny.gguf", template="chatml"))
            table.head(args.llm_n).to_csv(reports, index=False)
            side_by_side(
                f"llamacpp (random tiny GGUF, {args.threads} thread(s) in-process), {args.llm_n:,} reports",
                reports,
                tmp,
                args.cpus,
                {"backend": "llamacpp", "options": {"model": model, "n_threads": args.threads}},
                {"backend": "llamacpp", "options": {"model": model, "n_threads": 1}},
            )
    ray.shutdown()
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
