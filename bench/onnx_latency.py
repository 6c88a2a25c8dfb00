"""Inference latency of the ankle recipe: ONNX Runtime against PyTorch eager, side by side in one run.

The recipe's DenseNet121 (random weights: latency does not depend on them) is exported exactly as
``r2l export`` does, then timed at batch 1 and 8 on this CPU with PyTorch eager (no_grad, eval),
ONNX Runtime (float) and, with --quantize, the static int8 QDQ model.

    python bench/onnx_latency.py                  # 640x640, as the study
    python bench/onnx_latency.py --size 224 --quantize
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from report2label.core import registry
from report2label.core.export import WithSigmoid, _export_onnx, _quantize
from report2label.core.predict import session_for
from report2label.core.training.checkpoint import build_model
from report2label.core.training.loop import effective_recipe


def timed(run, repeats: int) -> float:
    run()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quantize", action="store_true")
    args = parser.parse_args()
    task = registry.task("ankle-fracture")
    recipe = effective_recipe(task, image_size=args.size)
    model = WithSigmoid(build_model(recipe, 1)).eval()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        _export_onnx(model, recipe, path, {})
        sessions = {"onnxruntime": session_for(path)}
        if args.quantize:
            calibration = rng.random((8, 1, args.size, args.size), dtype=np.float32)
            quantized = _quantize(path, Path(tmp) / "model.int8.onnx", calibration, calibration, [0.5])
            sessions["onnxruntime int8"] = session_for(quantized.path)
        print(
            f"ankle recipe ({recipe.architecture}, 1 channel) at {args.size}x{args.size}, "
            f"CPU with {torch.get_num_threads()} threads, mean of {args.repeats} runs"
        )
        print(
            f"{'batch':>5} {'pytorch eager ms':>17} "
            + " ".join(f"{name + ' ms':>20}" for name in sessions)
            + " "
            + " ".join(f"{'eager/' + name:>26}" for name in sessions)
        )
        for batch in args.batches:
            images = rng.random((batch, 1, args.size, args.size), dtype=np.float32)
            tensor = torch.from_numpy(images)

            def eager(tensor: torch.Tensor = tensor) -> None:
                with torch.no_grad():
                    model(tensor)

            eager_ms = timed(eager, args.repeats)
            times = {
                name: timed(lambda s=s, x=images: s.run(None, {"image": x}), args.repeats)
                for name, s in sessions.items()
            }
            print(
                f"{batch:>5} {eager_ms:>17.1f} "
                + " ".join(f"{ms:>20.1f}" for ms in times.values())
                + " "
                + " ".join(f"{eager_ms / ms:>25.2f}x" for ms in times.values())
            )


if __name__ == "__main__":
    main()
