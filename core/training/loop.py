"""The generic training loop: any task's recipe, any registered trainer, resumable, DDP under torchrun.

A run folder (:class:`RunFolder`) holds ``best.pt`` and ``last.pt`` (model, optimiser, scheduler,
epoch, RNG state, recipe and task, loadable with ``torch.load(weights_only=True)``), ``history.csv``
(per epoch: losses, accuracy, AUC and MCC on train and validation, learning rate) and ``run.json``.

One output per label; the loss is BCE with logits weighted per label by n_negative / n_positive,
and a masked target (NaN: an uncertain finding under ``--uncertain ignore``) counts in neither the
loss nor a metric. With several labels the epoch's metrics are macro means over the labels where
they are defined (AUC needs both classes), and ``history.csv`` also has each label's validation AUC.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from .. import registry
from ..atomic import atomic_path, sweep
from ..data.cache import CachedSplit, load_split
from ..data.folder import DatasetFolder
from ..errors import R2LError
from ..hashing import file_sha256
from ..image_model import ImageModelSpec
from ..metrics import macro_mean, scores
from ..progress import progress_bar
from ..task import TaskSpec
from .checkpoint import build_model, load_checkpoint, save_checkpoint
from .data import CachedImages
from .folder import RunFolder
from .loss import MaskedBCE, masked_bce, pos_weights
from .recipe import effective_recipe
from .trainer import Trainer

log = logging.getLogger(__name__)
HIGHER_IS_BETTER = {"mcc": True, "auc": True, "accuracy": True, "loss": False}


@dataclass(frozen=True)
class TrainSummary:
    """What one call of :func:`train` did: ``epochs`` it trained, after ``resumed_from`` done before."""

    rundir: Path
    epochs: int
    resumed_from: int
    best_epoch: int
    best_value: float
    metric: str
    seconds: float
    world_size: int
    weights_sha256: str


def _dataset_info(folder: DatasetFolder, task: TaskSpec) -> dict:
    if not folder.info.is_file():
        raise R2LError(f"{folder.root}: no dataset.json; write the data set with r2l dataset first")
    info = json.loads(folder.info.read_text())
    if info["task"] != task.name:
        raise R2LError(f"{folder.root}: the data set is for task {info['task']!r}, not {task.name!r}")
    return info


def _check_rundir(run: RunFolder, resume: bool, force: bool) -> None:
    """Refuse to resume nothing or to overwrite a run unasked; remove temp files of killed writers."""
    sweep(run.root)
    has_run = run.last.exists()
    if resume and not has_run:
        raise R2LError(f"{run.root}: nothing to resume (no last.pt)")
    if has_run and not resume and not force:
        raise R2LError(f"{run.root}: already holds a training run; pass --resume to continue or --force to start over")


def _start_rundir(run: RunFolder, resume: bool) -> None:
    """Create the folder at the first result (a failed start leaves none); a fresh run clears an old one."""
    if not resume:
        for path in run.outputs():
            path.unlink(missing_ok=True)
    run.root.mkdir(parents=True, exist_ok=True)


def _load_splits(
    dataset_dir: Path, recipe: ImageModelSpec, columns: list[str], show_progress: bool
) -> dict[str, CachedSplit]:
    return {name: load_split(dataset_dir, name, recipe, columns, show_progress) for name in ("train", "val")}


def _prepare(
    rank: int,
    world: int,
    run: RunFolder,
    dataset_dir: Path,
    recipe: ImageModelSpec,
    columns: list[str],
    resume: bool,
    force: bool,
    show_progress: bool,
) -> dict[str, CachedSplit]:
    """Rank 0 checks the run folder and builds the cache, then the other ranks read it; all stop on its error."""
    problem, splits = None, {}
    if rank == 0:
        try:
            _check_rundir(run, resume, force)
            splits = _load_splits(dataset_dir, recipe, columns, show_progress)
        except R2LError as exc:
            problem = str(exc)
    if world > 1:
        outcome = [problem]
        dist.broadcast_object_list(outcome, src=0)  # every rank stops with rank 0's error, none waits forever
        problem = outcome[0]
    if problem:
        if world > 1:
            dist.destroy_process_group()
        raise R2LError(problem)
    return splits if rank == 0 else _load_splits(dataset_dir, recipe, columns, False)


def _distributed(trainer: Trainer) -> tuple[int, int, int]:
    """(rank, local rank, world size); initialises the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(trainer.ddp_backend)
    if world > 1:
        return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world
    return 0, 0, 1


def _device(trainer: Trainer, local_rank: int) -> torch.device:
    if trainer.device_type == "cuda":
        if not torch.cuda.is_available():
            raise R2LError("the cuda trainer needs a CUDA GPU; none is visible (use --device cpu)")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device(trainer.device_type)


def _autocast(trainer: Trainer, device: torch.device):
    if trainer.autocast_dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, trainer.autocast_dtype))


def _predict(model, loader, device, trainer) -> tuple[np.ndarray, np.ndarray, float]:
    """Probabilities, labels and mean (unweighted) BCE loss over the known targets of a loader."""
    model.eval()
    probs, labels, loss_sum = [], [], 0.0
    with torch.no_grad():
        for images, target in loader:
            images = images.to(device, memory_format=torch.channels_last if trainer.channels_last else None)
            with _autocast(trainer, device):
                logits = model(images).float()
            target = target.to(device)
            loss_sum += masked_bce(logits, target, reduction="sum").item()
            probs.append(torch.sigmoid(logits).cpu().numpy())
            labels.append(target.cpu().numpy())
    truth, prob = np.concatenate(labels), np.concatenate(probs)
    return prob, truth, loss_sum / max(1, int((~np.isnan(truth)).sum()))


def _label_scores(truth: np.ndarray, prob: np.ndarray, threshold: float) -> list[dict[str, float]]:
    """:func:`scores` of each label (column) on its known (non-NaN) targets."""
    known = ~np.isnan(truth)
    return [scores(truth[known[:, i], i], prob[known[:, i], i], threshold) for i in range(truth.shape[1])]


def _epoch_scores(prefix: str, per_label: list[dict[str, float]], loss: float) -> dict[str, float]:
    """The loss and the macro mean of accuracy, AUC and MCC over the labels where each is defined."""
    row = {f"{prefix}_loss": loss}
    for name in ("accuracy", "auc", "mcc"):
        row[f"{prefix}_{name}"] = macro_mean([s[name] for s in per_label])
    return row


def _write_run(run: RunFolder, info: dict) -> None:
    with atomic_path(run.info) as tmp:
        tmp.write_text(json.dumps(info, indent=2))


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter's bytes, in order: equal only for bit-identical weights."""
    digest = hashlib.sha256()
    for parameter in model.parameters():
        digest.update(parameter.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _scheduler(optimizer: torch.optim.Optimizer, recipe: ImageModelSpec, steps: int) -> LRScheduler:
    opt = recipe.optimisation
    if opt.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=opt.max_lr, total_steps=recipe.epochs * steps, div_factor=max(opt.max_lr / opt.lr, 1.0)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def _train_epoch(
    net: torch.nn.Module,
    loader: DataLoader,
    criterion: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: LRScheduler,
    device: torch.device,
    backend: Trainer,
    advance: Callable[[int], None],
) -> tuple[float, np.ndarray, np.ndarray]:
    """One pass over ``loader``: mean loss, labels and probabilities."""
    net.train()
    loss_sum, seen, probs, labels = 0.0, 0, [], []
    for images, target in loader:
        images = images.to(
            device, non_blocking=True, memory_format=torch.channels_last if backend.channels_last else None
        )
        target = target.to(device, non_blocking=True)
        with _autocast(backend, device):
            logits = net(images).float()
        loss = criterion(logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(target)
        seen += len(target)
        probs.append(torch.sigmoid(logits.detach()).cpu().numpy())
        labels.append(target.cpu().numpy())
        advance(1)
    return loss_sum / seen, np.concatenate(labels), np.concatenate(probs)


def train(
    task: str | TaskSpec,
    dataset_dir: str | Path,
    rundir: str | Path,
    *,
    trainer: str = "cpu",
    epochs: int | None = None,
    image_size: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    pretrained: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    seed: int = 0,
    show_progress: bool = True,
) -> TrainSummary:
    """Train the task's image model on ``dataset_dir`` (from ``r2l dataset``) into ``rundir``.

    Every check comes before the first write: a run that fails to start leaves no folder behind.
    """
    spec = registry.task(task) if isinstance(task, str) else task
    recipe = effective_recipe(spec, epochs=epochs, image_size=image_size, batch_size=batch_size, lr=lr)
    backend = registry.trainer(trainer)
    dataset_dir, run = Path(dataset_dir), RunFolder(Path(rundir))
    dataset = DatasetFolder(dataset_dir)
    columns = _dataset_info(dataset, spec)["label_columns"]
    torch.manual_seed(seed)
    model = build_model(recipe, len(columns), pretrained)  # every rank alike, so a bad weights file stops all
    rank, local_rank, world = _distributed(backend)
    device = _device(backend, local_rank)
    splits = _prepare(rank, world, run, dataset_dir, recipe, columns, resume, force, show_progress)
    n_train = len(splits["train"].paths)
    if n_train < recipe.batch_size * world:
        raise R2LError(
            f"the training set has {n_train} images, fewer than the batch size {recipe.batch_size} "
            f"x {world} process(es); lower --batch-size"
        )

    model = model.to(device)
    if backend.channels_last:
        model = model.to(memory_format=torch.channels_last)
    weights = pos_weights(splits["train"].labels) if recipe.loss == "bce_pos_weight" else None
    criterion = MaskedBCE(torch.tensor(weights, device=device) if weights is not None else None)
    opt = recipe.optimisation
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt.lr, weight_decay=opt.weight_decay)
    train_set = CachedImages(splits["train"], recipe, train=True)
    scheduler = _scheduler(optimizer, recipe, n_train // (recipe.batch_size * world))

    start_epoch, history, best = 0, [], {"epoch": -1, "value": float("nan")}
    if resume:
        state = load_checkpoint(run.last, spec, recipe, columns)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start_epoch, best = state["epoch"] + 1, state["best"]
        history = pd.read_csv(run.history).iloc[:start_epoch].to_dict("records")
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if backend.compile:
        net = torch.compile(net)
    loader_args = {
        "batch_size": recipe.batch_size,
        "num_workers": backend.num_workers,
        "pin_memory": backend.pin_memory,
        "persistent_workers": backend.num_workers > 0,
    }
    val_loader = DataLoader(CachedImages(splits["val"], recipe, train=False), shuffle=False, **loader_args)
    sampler_fixed = DistributedSampler(train_set, seed=seed, drop_last=True) if world > 1 else None
    higher = HIGHER_IS_BETTER[recipe.select_metric]
    threshold = recipe.threshold if isinstance(recipe.threshold, float) else 0.5
    started = time.perf_counter()
    run_info = {
        "task": spec.name,
        "task_version": spec.version,
        "label_columns": columns,
        "dataset": str(Path(dataset_dir).resolve()),  # evaluate and export read it from any folder
        "dataset_sha256": file_sha256(dataset.info),
        "trainer": backend.name,
        "world_size": world,
        "seed": seed,
        "recipe": recipe.model_dump(mode="json"),
        "select_metric": recipe.select_metric,
        "report2label": version("report2label"),
    }
    if rank == 0:
        _start_rundir(run, resume)
        _write_run(run, run_info | {"status": "training"})

    for epoch in range(start_epoch, recipe.epochs):
        if sampler_fixed is not None:
            sampler_fixed.set_epoch(epoch)
            sampler = sampler_fixed
        else:
            sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(seed * 10_007 + epoch))
        loader = DataLoader(train_set, sampler=sampler, drop_last=True, **loader_args)
        with progress_bar(f"epoch {epoch + 1}/{recipe.epochs}", len(loader), show_progress and rank == 0) as advance:
            train_loss, train_truth, train_prob = _train_epoch(
                net, loader, criterion, optimizer, scheduler, device, backend, advance
            )
        val_prob, val_truth, val_loss = _predict(model, val_loader, device, backend)
        row = {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0]}
        val_scores = _label_scores(val_truth, val_prob, threshold)
        row |= _epoch_scores("train", _label_scores(train_truth, train_prob, threshold), train_loss)
        row |= _epoch_scores("val", val_scores, val_loss)
        if len(columns) > 1:
            row |= {f"val_auc_{column}": s["auc"] for column, s in zip(columns, val_scores, strict=True)}
        history.append(row)
        value = row[f"val_{recipe.select_metric}"]
        improved = np.isfinite(value) and (
            not np.isfinite(best["value"]) or (value > best["value"] if higher else value < best["value"])
        )
        if improved or best["epoch"] < 0:
            best = {"epoch": epoch, "value": float(value)}
        if rank == 0:
            with atomic_path(run.history) as tmp:
                pd.DataFrame(history).to_csv(tmp, index=False)
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "epoch": epoch,
                "best": best,
            }
            if best["epoch"] == epoch:
                save_checkpoint(run.best, spec, recipe, columns, state)
            save_checkpoint(run.last, spec, recipe, columns, state)
            log.info("epoch %d: %s", epoch + 1, {k: round(v, 4) for k, v in row.items()})

    checksum = weights_sha256(model)
    log.info("rank %d of %d: final weights sha256 %s", rank, world, checksum)
    if world > 1:
        sums = [None] * world
        dist.all_gather_object(sums, checksum)
        if len(set(sums)) > 1:
            raise R2LError(f"the {world} processes disagree on the final weights (sha256 by rank: {sums})")
    if rank == 0:
        _write_run(
            run,
            run_info
            | {
                "status": "finished",
                "best_epoch": best["epoch"] + 1,
                "best_value": best["value"],
                "weights_sha256": checksum,
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return TrainSummary(
        run.root,
        max(0, recipe.epochs - start_epoch),
        start_epoch,
        best["epoch"] + 1,
        best["value"],
        recipe.select_metric,
        time.perf_counter() - started,
        world,
        checksum,
    )
