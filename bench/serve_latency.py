"""Latency and throughput of ``r2l serve`` on 127.0.0.1, side by side with calling ``predict`` in-process.

Starts ``r2l serve MODEL`` on a free port of 127.0.0.1 and sends single-image ``POST /v1/predict``
requests from 1, 4 and 16 client threads (``--concurrency``), ``--requests`` per level; prints p50
and p95 latency and requests per second for each, then the same for the in-process baselines, one
image per call: ``predict(model, [image])`` (the Python API; it opens the ONNX Runtime session on
every call) and ``OnnxModel.probabilities`` on a session opened once (decoding and preprocessing
included; the floor for one image). The client threads run on the same machine as the server and
take CPU from it.

    python bench/serve_latency.py demo/model.onnx demo/images
    python bench/serve_latency.py demo/model.onnx demo/images --requests 400 --serve-args "--batch-window-ms 0"
"""

from __future__ import annotations

import argparse
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from report2label.core.predict import IMAGE_SUFFIXES, OnnxModel, predict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "report2label.cli", "serve", str(model), "--port", str(port), *extra]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            if server.poll() is not None:
                raise SystemExit(f"r2l serve exited with {server.returncode}") from None
            time.sleep(0.2)
    server.kill()
    raise SystemExit("r2l serve did not start within 120 s")


def summary(name: str, latencies: list[float], seconds: float) -> str:
    p50, p95 = np.percentile(np.asarray(latencies) * 1000, [50, 95])
    return f"| {name} | {p50:.1f} | {p95:.1f} | {len(latencies) / seconds:.1f} |"


def over_http(url: str, images: list[Path], concurrency: int) -> tuple[list[float], float]:
    """Send each image in its own request from ``concurrency`` threads; latencies and wall seconds."""
    clients = [httpx.Client(timeout=120) for _ in range(concurrency)]

    def one(index: int) -> float:
        path = images[index]
        start = time.perf_counter()
        response = clients[index % concurrency].post(url, files={"files": (path.name, path.read_bytes())})
        response.raise_for_status()
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(len(images))))
    seconds = time.perf_counter() - start
    for client in clients:
        client.close()
    return latencies, seconds


def in_process(call, images: list[Path]) -> tuple[list[float], float]:
    latencies = []
    start = time.perf_counter()
    for path in images:
        t = time.perf_counter()
        call(path)
        latencies.append(time.perf_counter() - t)
    return latencies, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an exported model (r2l export)")
    parser.add_argument("images", type=Path, help="a folder of images to send (searched recursively)")
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--serve-args", default="", help='further r2l serve options, e.g. "--batch-window-ms 0"')
    args = parser.parse_args()
    found = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise SystemExit(f"{args.images}: no images")
    images = [found[i % len(found)] for i in range(args.requests)]
    port = free_port()
    server = start_server(args.model, port, shlex.split(args.serve_args))
    rows = []
    try:
        url = f"http://127.0.0.1:{port}/v1/predict"
        over_http(url, images[: min(8, len(images))], 1)  # warm up
        for concurrency in args.concurrency:
            rows.append(summary(f"r2l serve, HTTP, concurrency {concurrency}", *over_http(url, images, concurrency)))
    finally:
        server.terminate()
        server.wait()
    model = OnnxModel.load(args.model)
    model.probabilities(np.stack([model.prepare(images[0])]))  # warm up
    rows.append(
        summary(
            "in-process, session opened once",
            *in_process(lambda p: model.probabilities(np.stack([model.prepare(p)])), images),
        )
    )
    rows.append(
        summary(
            "in-process `predict(model, [image])`",
            *in_process(lambda p: predict(args.model, [p], show_progress=False), images),
        )
    )
    print(f"{args.requests} single-image requests per row, model {args.model}")
    print("| contender | p50 ms | p95 ms | requests/s |\n| --- | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
