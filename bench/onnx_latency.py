"""Inference latency of the ankle recipe: PyTorch eager, ONNX Runtime float and int8, side by side in one run.

The recipe's DenseNet121 is exported exactly as ``r2l export`` does and timed at batch 1 and 8 on
this CPU: PyTorch eager (no_grad, eval), ONNX Runtime float and ONNX Runtime static int8 with each
``--settings`` of ``core/quantize.py`` (``best``: what ``r2l export --quantize`` writes; ``previous``:
the last release's; ``study``: the first; ``best-…``: ``best`` less one of its choices; the others:
alternatives that were tried). The contenders run in
turn, round after round, and each keeps its best round, so that a busy machine slows all alike.

Decision agreement with the float model is measured on realistic inputs: images of the synthetic
ankle example (``r2l example``), preprocessed as ``r2l predict`` does; the first
``--calibration`` images calibrate the quantiser, the others are checked at the float model's
Youden threshold on them. The weights are ``--weights`` (a report2label checkpoint or state dict)
or else "trained-ish" in seconds: random convolutions whose batch-norm statistics are
re-estimated on example images at the full size, and a linear head fitted to the example's labels
on their pooled features (probabilities spread out instead of sitting at 0.5).

    python bench/onnx_latency.py                              # 640x640, as the study: best vs study
    python bench/onnx_latency.py --settings best study qoperator per-tensor --batches 1
    python bench/onnx_latency.py --size 224 --images 48
    python bench/onnx_latency.py --run demo/run --batches 1   # + agreement on that run's test split
    python bench/onnx_latency.py --batches 1 --settings best previous best-average-pool best-qlinear-concat

``--run RUNDIR`` times that run's best checkpoint and adds each int8 setting's decision agreement
with the float model on the run's whole test split, at the run's own image size and thresholds,
calibrated on 32 training images — what ``r2l export --quantize`` measures and writes in the card.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from report2label.core import registry
from report2label.core.data.cache import load_split
from report2label.core.data.images import read_image
from report2label.core.data.preprocess import model_input, preprocess
from report2label.core.evaluate import load_run
from report2label.core.export import WithSigmoid, _export_onnx, export
from report2label.core.quantize import VARIANTS, quantize, session_options, write_int8
from report2label.core.training.checkpoint import build_model
from report2label.core.training.loop import effective_recipe


def example_images(folder: Path, size: int, count: int, recipe) -> tuple[np.ndarray, np.ndarray]:
    """``count`` preprocessed example images [N, C, size, size] and their gold labels."""
    registry.example("ankle-fracture")(folder, seed=0, n_reports=max(8, count // 2 + 4), image_size=256)
    images = pd.read_csv(folder / "images.csv").merge(
        pd.read_csv(folder / "reports.csv")[["report_id", "gold_fracture"]], on="report_id"
    )[:count]
    pixels = np.stack([preprocess(read_image(folder / p), recipe.preprocessing, size) for p in images["image"]])
    return model_input(pixels, recipe.in_chans), images["gold_fracture"].to_numpy()


def trained_ish(network: torch.nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 4) -> None:
    """Batch-norm statistics from ``images``, then a linear head fitted to ``labels`` on pooled features."""
    for norm in network.modules():
        if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
            norm.reset_running_stats()
            norm.momentum = None  # a cumulative average over the batches
    batches = [torch.from_numpy(images[s : s + batch]) for s in range(0, len(images), batch)]
    with torch.no_grad():
        network.train()
        for x in batches:
            network(x)
        network.eval()
        features = torch.cat([network.forward_head(network.forward_features(x), pre_logits=True) for x in batches])
    mean, scale = features.mean(0), features.std()  # one scale: a per-feature one blows up near-constant ones
    features = (features - mean) / scale
    weight, bias = torch.zeros(features.shape[1], requires_grad=True), torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=100)
    target = torch.from_numpy(labels.astype(np.float32))

    def closure():
        optimiser.zero_grad()
        logits = features @ weight + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target) + 1e-2 * weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():  # the head of the network sees unscaled features: fold the standardisation in
        head = network.get_classifier()
        head.weight.copy_((weight / scale)[None])
        head.bias.copy_(bias - (weight * mean / scale).sum())


def youden(probability: np.ndarray, labels: np.ndarray) -> float:
    best, threshold = -1.0, 0.5
    for t in np.unique(probability):
        decided = probability >= t
        j = decided[labels == 1].mean() - decided[labels == 0].mean() if 0 < labels.sum() < len(labels) else 0
        if j > best:
            best, threshold = j, float(t)
    return threshold


def best_of(runs: dict, repeats: int) -> dict[str, float]:
    """Milliseconds per run: the contenders in turn, ``repeats`` rounds, each its best round."""
    for run in runs.values():
        run()  # warm-up
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], (time.perf_counter() - start) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--settings", nargs="*", default=["best", "study"], choices=sorted(VARIANTS))
    parser.add_argument("--images", type=int, default=96, help="example images: calibration + check")
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--weights", type=Path, help="a checkpoint or state dict (default: trained-ish)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    parser.add_argument("--run", type=Path, help="a trained run: its weights, and agreement on its test split")
    args = parser.parse_args()
    if args.run and not args.weights:
        args.weights = args.run / "best.pt"
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # the quantiser's pre-processing warns per unused initializer
    task = registry.task("ankle-fracture")
    recipe = effective_recipe(task, image_size=args.size)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images, labels = example_images(tmp / "example", args.size, args.images, recipe)
        torch.manual_seed(0)  # the same trained-ish weights in every run
        network = build_model(recipe, 1, pretrained=args.weights)
        if args.weights is None:
            trained_ish(network, images[: args.calibration + 16], labels[: args.calibration + 16])
        model = WithSigmoid(network.eval()).eval()
        calibration, check, check_labels = (
            images[: args.calibration],
            images[args.calibration :],
            labels[args.calibration :],
        )
        path = tmp / "model.onnx"
        _export_onnx(model, recipe, path, {})
        sessions = {"onnxruntime float": session_options_session(path, args.threads)}
        for name in args.settings:
            int8 = write_int8(path, tmp / f"model.{name}.int8.onnx", calibration, VARIANTS[name])
            sessions[f"int8 {name}"] = session_options_session(int8, args.threads)
        probability = {name: predict(s, check) for name, s in sessions.items()}
        reference = probability["onnxruntime float"]
        threshold = youden(reference, check_labels)
        spread = np.quantile(reference, [0.1, 0.5, 0.9])
        print(
            f"ankle recipe ({recipe.architecture}, 1 channel) at {args.size}x{args.size}, CPU with "
            f"{torch.get_num_threads()} torch threads, ONNX Runtime threads {args.threads or 'default'}, "
            f"best of {args.repeats} interleaved rounds"
        )
        print(
            f"weights: {args.weights or 'trained-ish (BN statistics + fitted head)'}; {len(check)} example images "
            f"checked, {len(calibration)} calibrate; float p10/50/90 {spread[0]:.3f}/{spread[1]:.3f}/{spread[2]:.3f}, "
            f"decision threshold {threshold:.3f} (Youden)"
        )
        for name in args.settings:
            print(f"  int8 {name}: {VARIANTS[name].describe()}")
        rows: dict[str, list[str]] = {"pytorch eager": [], **{name: [] for name in sessions}}
        width = max(map(len, rows)) + 2
        cells = "".join(f"{'b' + str(b) + ' ms':>11}{'eager/this':>11}" for b in args.batches)
        print(f"{'contender':<{width}}{cells}{'agreement':>11}{'max |dp|':>10}")
        for batch in args.batches:
            x = np.ascontiguousarray(np.resize(check, (batch, *check.shape[1:])))
            tensor = torch.from_numpy(x)

            def eager(tensor: torch.Tensor = tensor) -> None:
                with torch.no_grad():
                    model(tensor)

            runs = {"pytorch eager": eager}
            runs |= {name: (lambda s=s, x=x: s.run(None, {"image": x})) for name, s in sessions.items()}
            times = best_of(runs, args.repeats)
            for name, ms in times.items():
                rows[name].append(f"{ms:>11.1f}{times['pytorch eager'] / ms:>10.2f}x")
        for name, cells in rows.items():
            extra = ""
            if name in probability:
                got = probability[name]
                agree = ((got >= threshold) == (reference >= threshold)).mean()
                extra = f"{agree:>11.1%}{np.abs(got - reference).max():>10.4f}"
            print(f"{name:<{width}}" + "".join(cells) + extra)
        if args.run:
            test_split_agreement(args.run, args.settings, tmp / "run")


def test_split_agreement(rundir: Path, settings: list[str], folder: Path) -> None:
    """Each setting's decision agreement with the float model on ``rundir``'s whole test split."""
    run, recipe = load_run(rundir)
    export(rundir, folder / "model.onnx")
    labels = json.loads((rundir / "metrics.json").read_text())["labels"]
    thresholds = [labels[name]["threshold"] for name in labels]
    test = load_split(Path(run["dataset"]), "test", recipe, run["label_columns"], show_progress=False)
    train = load_split(Path(run["dataset"]), "train", recipe, run["label_columns"], show_progress=False)
    check = model_input(test.images, recipe.in_chans)
    calibration = model_input(train.images[:32], recipe.in_chans)
    print(f"\n{rundir}: {len(check)} test images at {recipe.image_size}x{recipe.image_size}, thresholds {thresholds}")
    for name in settings:
        result = quantize(
            folder / "model.onnx", folder / f"model.{name}.int8.onnx", calibration, check, thresholds, VARIANTS[name]
        )
        print(f"  int8 {name:<24} decisions agreeing {result.agreement:.1%}, max |dp| {result.max_abs_diff:.4f}")


def session_options_session(path: Path, threads: int):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads or None), providers=["CPUExecutionProvider"])


def predict(session, images: np.ndarray, batch: int = 8) -> np.ndarray:
    return np.concatenate(
        [session.run(None, {"image": images[s : s + batch]})[0] for s in range(0, len(images), batch)]
    )[:, 0]


if __name__ == "__main__":
    main()
