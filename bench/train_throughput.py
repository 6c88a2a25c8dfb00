"""Training throughput of the ankle recipe (DenseNet121, 1 channel) against the data loader's, side by side.

For each image size: images per second of the cache loader alone (memory map + the recipe's
augmentation) and of full training steps (forward, backward, AdamW) on the chosen trainer. A
loader/train ratio above 1 means compute is the limit; below 1, loading starves the device.

    python bench/train_throughput.py                       # cpu trainer, 224 and 640 px
    python bench/train_throughput.py --device cuda --batch-size 32
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from report2label.core import registry
from report2label.core.data.cache import CachedSplit
from report2label.core.training.checkpoint import build_model
from report2label.core.training.data import CachedImages
from report2label.core.training.loop import effective_recipe


def fake_cache(folder: Path, n: int, size: int) -> CachedSplit:
    """A memory-mapped uint8 cache of random images, as r2l dataset + the cache would write it."""
    path = folder / f"cache-{size}.npy"
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size))
    array[:] = np.random.default_rng(0).integers(0, 256, array.shape, dtype=np.uint8)
    array.flush()
    labels = (np.arange(n) % 2).astype(np.float32)[:, None]
    return CachedSplit(np.load(path, mmap_mode="r"), labels, [f"img{i}" for i in range(n)], [])


def loader_rate(split: CachedSplit, recipe, trainer, batches: int) -> float:
    loader = DataLoader(
        CachedImages(split, recipe, train=True),
        batch_size=recipe.batch_size,
        shuffle=True,
        num_workers=trainer.num_workers,
        pin_memory=trainer.pin_memory,
        drop_last=True,
    )
    start, seen = time.perf_counter(), 0
    for i, (images, _) in enumerate(loader):
        seen += len(images)
        if i + 1 == batches:
            break
    return seen / (time.perf_counter() - start)


def train_rate(recipe, trainer, steps: int) -> float:
    device = torch.device(trainer.device_type)
    model = build_model(recipe, 1).to(device)
    layout = torch.channels_last if trainer.channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    if trainer.compile:
        model = torch.compile(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    images = torch.rand(recipe.batch_size, 1, recipe.image_size, recipe.image_size, device=device)
    images = images.to(memory_format=layout)
    target = torch.randint(0, 2, (recipe.batch_size, 1), device=device).float()
    dtype = getattr(torch, trainer.autocast_dtype) if trainer.autocast_dtype else None

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(images).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up (allocations, compilation)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * recipe.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="trainer: cpu, cuda, cuda-compile")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 640])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    trainer = registry.trainer(args.device)
    task = registry.task("ankle-fracture")
    name = torch.cuda.get_device_name() if trainer.device_type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"ankle recipe ({task.recipe.architecture}, 1 channel), trainer {trainer.name} on {name}, "
        f"batch {args.batch_size}"
    )
    print(f"{'size':>6} {'loader img/s':>13} {'train img/s':>12} {'loader/train':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            recipe = effective_recipe(task, image_size=size, batch_size=args.batch_size)
            split = fake_cache(Path(tmp), n=args.batch_size * (args.steps + 2), size=size)
            loading = loader_rate(split, recipe, trainer, batches=args.steps + 1)
            training = train_rate(recipe, trainer, args.steps)
            print(f"{size:>6} {loading:>13.1f} {training:>12.2f} {loading / training:>13.1f}")


if __name__ == "__main__":
    main()
