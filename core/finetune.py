"""Weak labels → a fine-tuned local labeller: supervised LoRA fine-tuning with TRL's SFTTrainer and PEFT.

Each ``labelled`` row of a ``labels.csv`` becomes one example: the prompt is the task's prompt
variant applied to the report (the chat messages a backend sends), the completion is the stored,
validated answer as the model should write it (JSON of the asked fields, or the text of a
free-text task); the loss is on the completion only. The default recipe is RadReportX's: LoRA of
rank 8 and alpha 16 on the query and value projections. A held-out share gives the validation
loss. Checkpoints go to ``ADAPTER_DIR/checkpoints`` and ``resume`` continues from the last one.
The adapter (``adapter_model.safetensors``, ``adapter_config.json``), the training log and a card
naming the teacher and the data counts are written at the end, each file atomically. The adapter
labels with ``r2l label --backend transformers --model BASE -O adapter=ADAPTER_DIR``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import registry
from .atomic import atomic_path, scratch_dir, sweep
from .errors import R2LError
from .labelling.chat import fold_system, supports_system
from .local_model import load_local_model
from .reports import LABELS_HINT, read_reports, read_table, require_columns
from .task import PromptVariant, TaskSpec


@dataclass(frozen=True)
class AdapterFolder:
    """The layout of ``r2l finetune``'s output folder, owned here alone."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "adapter_config.json"

    @property
    def checkpoints(self) -> Path:
        """``checkpoint-<step>`` folders of the trainer: what ``resume`` continues from."""
        return self.root / "checkpoints"

    @property
    def log(self) -> Path:
        return self.root / "training_log.csv"

    @property
    def summary(self) -> Path:
        return self.root / "finetune.json"

    @property
    def card(self) -> Path:
        return self.root / "ADAPTER.md"

    def last_checkpoint(self) -> Path | None:
        found = [p for p in self.checkpoints.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
        return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


@dataclass(frozen=True)
class Recipe:
    """LoRA and optimisation settings; the defaults are RadReportX's LoRA (rank 8, alpha 16, q/v)."""

    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "v_proj")
    lr: float = 2e-4
    epochs: float = 1.0
    max_length: int = 1024
    batch_size: int = 4
    gradient_accumulation: int = 1
    val_share: float = 0.1
    save_steps: int = 50
    max_steps: int | None = None
    seed: int = 0


@dataclass
class FinetuneSummary:
    adapter: Path
    steps: int
    resumed_from: int | None
    train_examples: int
    val_examples: int
    train_loss: float
    eval_loss: float | None
    seconds: float
    steps_per_second: float
    counts: dict[str, int] = field(default_factory=dict)


def _import_trainer():
    try:
        import datasets
        import peft
        import torch
        import trl
    except ImportError:
        raise R2LError(
            "r2l finetune needs torch, transformers, peft, trl and datasets: pip install 'report2label[finetune]'"
        ) from None
    return datasets, peft, torch, trl


def training_examples(
    task: TaskSpec, variant: PromptVariant, labels: Path, reports: Path, id_col: str, text_col: str
) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, list[str]]]:
    """Prompt/completion examples of the labelled rows, the counts of what was used and left out, the teacher."""
    table = read_table(labels, ("report_id",))
    columns = ("report_id", "status", "answer", "task", "backend", "model", "prompt_hash", "text_hash")
    require_columns(table, labels, dict.fromkeys(columns, LABELS_HINT))
    other = set(table["task"].dropna().astype(str)) - {task.name}
    if other:
        raise R2LError(f"{labels}: holds labels of task {sorted(other)[0]!r}, not {task.name!r}")
    texts = read_reports(reports, id_col, text_col).set_index("report_id")
    labelled = table[table["status"] == "labelled"]
    known = labelled["report_id"].isin(texts.index)
    current = known & (labelled["text_hash"] == labelled["report_id"].map(texts["text_hash"]))
    rows = labelled[current]
    counts = {
        "labels": len(table),
        "labelled": len(labelled),
        "not_labelled": len(table) - len(labelled),
        "no_report_text": int((~known).sum()),
        "report_text_changed": int((known & ~current).sum()),
        "examples": len(rows),
    }
    if rows.empty:
        raise R2LError(f"{labels}: no labelled row whose report text is in {reports} (ids matched on {id_col!r})")
    examples = [
        {
            "report_id": row.report_id,
            "prompt": variant.messages(texts.at[row.report_id, "text"]),
            "completion": [{"role": "assistant", "content": task.answer_text(json.loads(row.answer))}],
        }
        for row in rows.itertuples()
    ]
    teacher = {key: sorted(rows[key].fillna("").astype(str).unique()) for key in ("backend", "model", "prompt_hash")}
    return examples, counts, teacher


def _split(examples: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    order = np.random.default_rng(seed).permutation(len(examples))
    n_val = int(round(len(examples) * share)) if share > 0 else 0
    n_val = min(max(n_val, 1 if share > 0 else 0), len(examples) - 1)
    return [examples[i] for i in order[n_val:]], [examples[i] for i in order[:n_val]]


def _fitting(examples: list[dict], tokenizer: Any, max_length: int, counts: dict[str, int]) -> list[dict]:
    """The examples whose prompt and answer fit ``max_length`` tokens (truncation would cut the answer), with
    the instructions folded into the user turn for a chat template without a system role."""
    render = tokenizer.apply_chat_template
    if not supports_system(lambda m: render(m, tokenize=False, add_generation_prompt=True)):
        examples = [{**e, "prompt": fold_system(e["prompt"])} for e in examples]

    def length(example: dict) -> int:
        text = render(example["prompt"] + example["completion"], tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    fitting = [e for e in examples if length(e) <= max_length]
    counts["too_long"] = len(examples) - len(fitting)
    counts["examples"] = len(fitting)
    return fitting


def _check_folder(folder: AdapterFolder, resume: bool, force: bool) -> None:
    root = folder.root
    if root.exists() and not root.is_dir():
        raise R2LError(f"{root}: is a file, not a folder; choose another output folder")
    holds = folder.config.exists() or folder.checkpoints.exists()
    if resume and folder.last_checkpoint() is None:
        raise R2LError(f"{root}: no checkpoint to resume from (checkpoints/checkpoint-*)")
    if holds and not (resume or force):
        raise R2LError(f"{root}: holds a fine-tuning run; pass --resume to continue it or --force to start over")


def _card(s: dict[str, Any]) -> str:
    """ADAPTER.md: what the adapter is, where its labels came from, the data counts and how to use it."""
    counts, recipe, teacher = s["counts"], s["recipe"], s["teacher"]
    eval_loss = "–" if s["eval_loss"] is None else f"{s['eval_loss']:.4f}"
    targets = ", ".join(recipe["target_modules"])
    return f"""# LoRA adapter for task `{s["task"]}`

Fine-tuned by `r2l finetune` on weak labels. Research use only; not for diagnostic use.

- Base model: `{s["base"]}` (a local folder)
- Task: `{s["task"]}` version {s["task_version"]}; prompt variant `{s["prompt"]}` ({s["prompt_hash"]})
- Teacher (where the labels came from): backend {", ".join(teacher["backend"])},
  model {", ".join(teacher["model"]) or "–"}, prompt hash {", ".join(teacher["prompt_hash"]) or "– (none)"}
- Data: {counts["labels"]} label rows, {counts["labelled"]} labelled; {counts["examples"]} examples
  ({s["train_examples"]} train, {s["val_examples"]} validation); left out: {counts["not_labelled"]} not labelled,
  {counts["no_report_text"]} without report text, {counts["report_text_changed"]} whose report text changed,
  {counts["too_long"]} longer than the max length
- Recipe: LoRA rank {recipe["rank"]}, alpha {recipe["alpha"]}, dropout {recipe["dropout"]}, on {targets};
  learning rate {recipe["lr"]}, {recipe["epochs"]} epochs, max length {recipe["max_length"]},
  batch {recipe["batch_size"]} × {recipe["gradient_accumulation"]}
- Training: {s["steps"]} steps in {s["seconds"]:.1f} s on {s["device"]} ({s["dtype"]});
  final training loss {s["train_loss"]:.4f}, validation loss {eval_loss}

Label with it:

    r2l label {s["task"]} REPORTS -o OUTDIR --backend transformers --model {s["base"]} \\
        --prompt {s["prompt"]} -O adapter={s["adapter"]}

Measure its labels against gold labels (`r2l eval-labels`) before training on them.
"""


def _trainer(
    modules: tuple,
    model: Any,
    tokenizer: Any,
    recipe: Recipe,
    folder: AdapterFolder,
    rows: tuple,
    device: str,
    show_progress: bool,
) -> Any:
    """TRL's SFTTrainer with a LoRA of ``recipe``; validation loss at every checkpoint and at the end."""
    datasets, peft, torch, trl = modules
    train_rows, val_rows = rows
    config = trl.SFTConfig(
        output_dir=str(folder.checkpoints),
        learning_rate=recipe.lr,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps or -1,
        max_length=recipe.max_length,
        per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation,
        save_strategy="steps",
        save_steps=recipe.save_steps,
        eval_strategy="steps" if val_rows else "no",
        eval_steps=recipe.save_steps,
        logging_steps=1,
        seed=recipe.seed,
        use_cpu=device == "cpu",
        bf16=device.startswith("cuda"),
        report_to="none",
        disable_tqdm=not show_progress,
    )
    lora = peft.LoraConfig(
        r=recipe.rank,
        lora_alpha=recipe.alpha,
        lora_dropout=recipe.dropout,
        target_modules=list(recipe.target_modules),
        task_type="CAUSAL_LM",
    )

    def dataset(examples: list[dict]) -> Any:
        return datasets.Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])

    trainer = trl.SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset(train_rows),
        eval_dataset=dataset(val_rows) if val_rows else None,
        processing_class=tokenizer,
        peft_config=lora,
    )
    if not show_progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def _last(log: list[dict], key: str, default: float | None = None) -> float | None:
    """The last value of ``key`` in the trainer's log."""
    return next((float(row[key]) for row in reversed(log) if key in row), default)


def _write(folder: AdapterFolder, trainer: Any, summary: dict[str, Any]) -> None:
    """The adapter files, the training log, ``finetune.json`` and the card, each replaced atomically."""
    with scratch_dir(folder.root) as scratch:
        trainer.model.save_pretrained(scratch)
        for path in scratch.iterdir():
            os.replace(path, folder.root / path.name)
    with atomic_path(folder.log) as tmp:
        pd.DataFrame(trainer.state.log_history).to_csv(tmp, index=False)
    with atomic_path(folder.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    with atomic_path(folder.card) as tmp:
        tmp.write_text(_card(summary))


def finetune(
    task: str | TaskSpec,
    labels: str | Path,
    reports: str | Path,
    base: str | Path,
    outdir: str | Path,
    *,
    recipe: Recipe = Recipe(),
    prompt: str | None = None,
    id_col: str = "report_id",
    text_col: str = "text",
    device: str = "auto",
    resume: bool = False,
    force: bool = False,
    show_progress: bool = True,
) -> FinetuneSummary:
    """Fine-tune a LoRA adapter of the local model ``base`` on the labelled rows of ``labels`` into ``outdir``.

    Everything is checked (task, labels, reports, base model, output folder) before the folder is
    created or, with ``force``, cleared.
    """
    spec = registry.task(task) if isinstance(task, str) else task
    variant = spec.prompt(prompt)
    labels, reports, base, folder = Path(labels), Path(reports), Path(base), AdapterFolder(Path(outdir))
    if not base.is_dir():
        raise R2LError(f"{base}: no such local model folder (r2l finetune never downloads)")
    if not 0 <= recipe.val_share < 1:
        raise R2LError(f"val_share {recipe.val_share}: expected 0 <= share < 1")
    _check_folder(folder, resume, force)
    examples, counts, teacher = training_examples(spec, variant, labels, reports, id_col, text_col)
    modules = datasets, _, torch, _ = _import_trainer()
    if not show_progress:
        from transformers.utils import logging

        datasets.disable_progress_bars()
        logging.disable_progress_bar()
    device = device if device != "auto" else "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise R2LError(f"--device {device}: no CUDA GPU is available")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    tokenizer, model = load_local_model(base, dtype)
    examples = _fitting(examples, tokenizer, recipe.max_length, counts)
    if len(examples) < (2 if recipe.val_share > 0 else 1):
        raise R2LError(
            f"{len(examples)} example(s) fit --max-length {recipe.max_length} (prompt and answer); "
            "training needs 1, and 2 with a validation share"
        )
    rows = _split(examples, recipe.val_share, recipe.seed)
    if force and not resume:
        shutil.rmtree(folder.root, ignore_errors=True)
    folder.root.mkdir(parents=True, exist_ok=True)
    sweep(folder.root)
    resumed = folder.last_checkpoint() if resume else None
    trainer = _trainer(modules, model, tokenizer, recipe, folder, rows, device, show_progress)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resumed) if resumed else None)
    seconds = time.perf_counter() - start
    log, steps = trainer.state.log_history, trainer.state.global_step
    resumed_from = int(resumed.name.split("-")[-1]) if resumed else None
    summary = {
        "task": spec.name,
        "task_version": spec.version,
        "prompt": variant.name,
        "prompt_hash": variant.hash,
        "base": str(base.resolve()),
        "adapter": str(folder.root.resolve()),
        "labels": str(labels),
        "reports": str(reports),
        "teacher": teacher,
        "counts": counts,
        "train_examples": len(rows[0]),
        "val_examples": len(rows[1]),
        "recipe": asdict(recipe),
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "steps": steps,
        "resumed_from": resumed_from,
        "train_loss": _last(log, "loss", default=result.training_loss),
        "eval_loss": _last(log, "eval_loss"),
        "seconds": seconds,
        "steps_per_second": (steps - (resumed_from or 0)) / seconds if seconds > 0 else 0.0,
    }
    _write(folder, trainer, summary)
    return FinetuneSummary(
        folder.root,
        steps,
        resumed_from,
        len(rows[0]),
        len(rows[1]),
        summary["train_loss"],
        summary["eval_loss"],
        seconds,
        summary["steps_per_second"],
        counts,
    )
