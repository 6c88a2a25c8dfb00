"""Steps per second of ``r2l finetune`` (LoRA, TRL's SFTTrainer) on a random-weight Llama.

Writes a random Llama in Hugging Face layout (``--model-size tiny`` or ``8b``, Llama-3-8B's shape,
16 GB) unless ``--model`` names a local folder, labels synthetic ankle reports with the ``rules``
backend (the teacher), fine-tunes for ``--steps`` steps and prints the trainer's steps per second
(bf16 on a GPU, float32 on the CPU). A random model's loss means nothing; this measures speed.

    python bench/finetune_speed.py --model-size tiny --steps 4
    python bench/finetune_speed.py --model-size 8b --steps 10 --device cuda --workdir /scratch/ft
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from report2label.core import label
from report2label.core.finetune import Recipe, finetune
from report2label.plugins.ankle_fracture.example import write_example
from report2label.testing.random_hf import write_random_llama


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="A local base model folder (default: write a random Llama).")
    parser.add_argument("--model-size", choices=("tiny", "8b"), default="tiny")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", type=Path, help="Where the model, reports and adapter go (default: a temp dir).")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="finetune-bench-"))
    base = args.model or write_random_llama(work / f"random-llama-{args.model_size}", size=args.model_size)
    n_reports = args.steps * args.batch_size + 4
    write_example(work / "reports", seed=1, n_reports=n_reports, image_size=64)
    label("ankle-fracture", work / "reports" / "reports.csv", work / "labels", show_progress=False)
    recipe = Recipe(batch_size=args.batch_size, max_length=args.max_length, max_steps=args.steps, save_steps=10**6)
    summary = finetune(
        "ankle-fracture",
        work / "labels" / "labels.csv",
        work / "reports" / "reports.csv",
        base,
        work / "adapter",
        recipe=recipe,
        device=args.device,
        force=True,
        show_progress=False,
    )
    card = json.loads((summary.adapter / "finetune.json").read_text())
    print(
        f"{Path(base).name}: {summary.steps} steps of batch {args.batch_size} on {card['device']} ({card['dtype']}) "
        f"in {summary.seconds:.1f} s = {summary.steps_per_second:.3f} steps/s "
        f"({summary.steps_per_second * args.batch_size:.2f} examples/s); loss {summary.train_loss:.3f}"
    )


if __name__ == "__main__":
    main()
