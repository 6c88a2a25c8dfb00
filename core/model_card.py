"""The model card written beside an exported model: what it predicts, from what, how well, for what."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from .atomic import atomic_path
from .data.folder import DatasetFolder
from .image_model import ImageModelSpec
from .labelling.folder import LabelFolder
from .quantize import BEST
from .task import TaskSpec
from .training.folder import RunFolder

NOT_FOR_DIAGNOSIS = (
    "**Not for diagnostic use.** This model was trained on labels extracted automatically from "
    "report texts; it has not been validated or approved as a medical device. Research use only."
)


def _label_source(dataset: dict) -> list[str]:
    labels_path = Path(dataset["sources"]["labels"])
    lines = []
    if labels_path.is_file():
        table = pd.read_csv(labels_path, usecols=["backend", "model", "prompt", "prompt_hash", "status"])
        first = table.iloc[0]
        prompt = (
            f"prompt variant `{first['prompt']}` ({first['prompt_hash']})"
            if isinstance(first["prompt"], str)
            else "no prompt (rule-based)"
        )
        lines.append(
            f"- Labelled by backend `{first['backend']}`, model `{first['model']}`, {prompt}; "
            f"{(table['status'] == 'labelled').sum()} of {len(table)} reports labelled."
        )
    agreement = LabelFolder(labels_path.parent).evaluation
    if agreement.is_file():
        items = json.loads(agreement.read_text())["per_label"]
        for item in items:
            acc = item["metrics"]["accuracy"]
            which = f" of `{item['label']}`" if len(items) > 1 else ""
            lines.append(
                f"- Label accuracy{which} against {item['n']} gold-labelled reports: {acc['value']:.3f} "
                f"(95% CI {acc['low']:.3f}–{acc['high']:.3f})."
            )
    else:
        lines.append("- Label accuracy was not measured (no label_eval.json beside the labels).")
    return lines


UNCERTAIN_TARGETS = {
    "ones": "1 (U-Ones)",
    "zeros": "0 (U-Zeros)",
    "ignore": "no target (U-Ignore: masked, left out of the loss and of every metric)",
}


def _uncertainty(task: TaskSpec, dataset: dict) -> list[str]:
    """How the four-state labels became training targets (nothing for a task without them)."""
    if not task.state_labels:
        return []
    policy = dataset.get("uncertain", "ones")
    return [
        f"- {len(task.state_labels)} labels are findings in four states (positive, negative, uncertain, not "
        f"mentioned). Training targets: positive → 1, negative and not mentioned → 0, uncertain → "
        f"{UNCERTAIN_TARGETS[policy]} (`r2l dataset --uncertain {policy}`)."
    ]


def _warning_lines(warnings: list[str]) -> list[str]:
    return ["", "Warnings:", "", *(f"- {warning}" for warning in warnings)] if warnings else []


def _fmt(est: dict) -> str:
    """A value with its interval; "–" where it is undefined (NaN: no positive decision, one class)."""
    if est["value"] != est["value"]:
        return "–"
    return f"{est['value']:.3f} ({est['low']:.3f}–{est['high']:.3f})"


def _data_lines(dataset: dict) -> list[str]:
    """The counts per split: one table for one label, else images per split and a table of classes per label."""
    counts = dataset["counts"]
    if len(dataset["label_columns"]) == 1:
        header = list(next(iter(counts.values())))
        rows = [list(split_counts.values()) for split_counts in counts.values()]
    else:
        header = ["images", "patients"]
        rows = [[c["images"], c["patients"]] for c in counts.values()]
    lines = ["| split | " + " | ".join(header) + " |", "|---" * (1 + len(header)) + "|"]
    lines += [f"| {split} | " + " | ".join(map(str, row)) + " |" for split, row in zip(counts, rows, strict=True)]
    if len(dataset["label_columns"]) > 1:
        lines += ["", "| label | " + " | ".join(f"{split} 1 / 0" for split in counts) + " |"]
        lines.append("|---" * (1 + len(counts)) + "|")
        for column in dataset["label_columns"]:
            cells = []
            for c in counts.values():
                masked = f" ({c[f'{column}=masked']} masked)" if f"{column}=masked" in c else ""
                cells.append(f"{c[f'{column}=1']} / {c[f'{column}=0']}{masked}")
            lines.append(f"| {column} | " + " | ".join(cells) + " |")
    return lines + _warning_lines(dataset.get("warnings", []))


MULTILABEL_METRICS = ("auc", "sensitivity", "specificity", "ppv", "npv", "f1", "mcc")


def _metric_lines(report: dict) -> list[str]:
    """Test metrics: per metric and label for one label; for several, a row per label and macro/micro AUC."""
    if len(report["labels"]) == 1:
        lines = ["| label | metric | value | 95% CI |", "|---|---|---|---|"]
        for name, values in report["labels"].items():
            for metric, est in values["metrics"].items():
                lines.append(f"| {name} | {metric} | {est['value']:.3f} | {est['low']:.3f}–{est['high']:.3f} |")
            c = values["confusion"]
            lines.append(f"| {name} | confusion | TN={c['tn']} FP={c['fp']} FN={c['fn']} TP={c['tp']} | |")
        return lines
    lines = [
        f"Macro AUC {_fmt(report['macro_auc'])} (mean over the labels where AUC is defined), "
        f"micro AUC {_fmt(report['micro_auc'])} (all known label-image pairs pooled).",
        "",
        "| label | n (masked) | threshold | " + " | ".join(MULTILABEL_METRICS) + " |",
        "|---" * (3 + len(MULTILABEL_METRICS)) + "|",
    ]
    for name, values in report["labels"].items():
        cells = [_fmt(values["metrics"][metric]) for metric in MULTILABEL_METRICS]
        lines.append(
            f"| {name} | {values['n']} ({values['masked']}) | {values['threshold']:.3f} | " + " | ".join(cells) + " |"
        )
    return lines + _warning_lines(report["warnings"])


def card_path(model_path: Path) -> Path:
    """Where the model card of ``model_path`` goes: ``MODEL.md`` beside it."""
    return model_path.with_name("MODEL.md")


def write_model_card(
    model_path: Path,
    rundir: Path,
    task: TaskSpec,
    run: dict,
    report: dict,
    recipe: ImageModelSpec,
    metadata: dict[str, str],
    parity,
    quantized,
) -> Path:
    """Write ``MODEL.md`` (and the ROC curve) beside ``model_path``."""
    dataset = json.loads(DatasetFolder(Path(run["dataset"])).info.read_text())
    roc = RunFolder(rundir).roc
    roc_name = model_path.with_suffix(".roc.png").name
    lines = [
        f"# Model card: {task.name} (version {task.version})",
        "",
        NOT_FOR_DIAGNOSIS,
        "",
        "## What it predicts",
        "",
        task.description,
        "",
        f"Output: a probability per label ({', '.join(report['labels'])}); decision threshold per label "
        + (
            "chosen on the validation split by Youden's J"
            if report["threshold_rule"] == "youden"
            else "fixed by the recipe"
        )
        + ": "
        + ", ".join(f"{name} ≥ {v['threshold']:.3f}" for name, v in report["labels"].items())
        + ".",
        "",
        "## Model",
        "",
        f"- `{model_path.name}`: {recipe.architecture}, {recipe.in_chans} channel(s), {recipe.image_size}x"
        f"{recipe.image_size} input, dynamic batch; ONNX metadata keys `r2l.*` carry labels, thresholds and "
        "preprocessing.",
        f"- Preprocessing: {recipe.preprocessing.model_dump_json()}.",
        f"- Trained {run['finished']} with report2label {metadata['r2l.report2label_version']}, recipe hash "
        f"{metadata['r2l.recipe_hash']}, trainer `{run['trainer']}`, best epoch {run['best_epoch']} by validation "
        f"{run['select_metric']}.",
        f"- Parity with PyTorch on {parity.images} test images: max |Δp| = {parity.max_abs_diff:.2e}, "
        f"{parity.decisions_differ} decisions differ.",
    ]
    if quantized is not None:
        lines.append(
            f"- `{quantized.path.name}`: static int8 ({BEST.describe()}), decisions agree with the float "
            f"model on {quantized.agreement:.1%} of test images (max |Δp| {quantized.max_abs_diff:.3f}); "
            f"batch-1 latency {quantized.int8_ms:.1f} ms vs {quantized.float_ms:.1f} ms."
        )
    lines += [
        "",
        "## Labels",
        "",
        *_label_source(dataset),
        *_uncertainty(task, dataset),
        "",
        "## Data",
        "",
        *_data_lines(dataset),
        "",
        f"Split by patient (seed {dataset['seed']}); validation and test balanced: {dataset['balanced']}.",
        "",
        f"## Test metrics ({report['images']} images, bootstrap 95% CI, {report['bootstrap']} resamples)",
        "",
        *_metric_lines(report),
    ]
    if roc.is_file():
        with atomic_path(model_path.parent / roc_name) as tmp:
            shutil.copyfile(roc, tmp)
        lines += ["", f"![ROC curve]({roc_name})"]
    lines += [
        "",
        "## Intended use",
        "",
        "Research on automatically labelled radiographs: triage experiments, retrospective studies, "
        "comparison of labelling methods. Use it only with images like those it was trained on (same task, "
        "projection and preprocessing), and validate it locally before any use.",
        "",
        NOT_FOR_DIAGNOSIS,
        "",
    ]
    card = card_path(model_path)
    with atomic_path(card) as tmp:
        tmp.write_text("\n".join(lines))
    return card
