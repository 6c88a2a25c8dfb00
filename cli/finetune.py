"""``r2l finetune``: a LoRA adapter of a local model, trained on validated labels (weak labels → local labeller)."""

from pathlib import Path

import click

from report2label.cli.options import console
from report2label.core.finetune import Recipe

DEFAULTS = Recipe()


@click.command(short_help="Fine-tune a LoRA adapter of a local model on labels.")
@click.argument("task")
@click.argument("labels", type=click.Path(path_type=Path))
@click.option("--reports", type=click.Path(path_type=Path), required=True, help="The labelled reports' table.")
@click.option("--base", type=click.Path(path_type=Path), required=True, help="Local base model folder (HF layout).")
@click.option("-o", "--outdir", type=click.Path(path_type=Path), required=True, help="The adapter folder to write.")
@click.option("--prompt", help="Prompt variant the examples are asked with (default: the task's first).")
@click.option("--id-col", default="report_id", show_default=True)
@click.option("--text-col", default="text", show_default=True)
@click.option("--lr", type=float, default=DEFAULTS.lr, show_default=True, help="Learning rate.")
@click.option("--epochs", type=click.FloatRange(0, min_open=True), default=DEFAULTS.epochs, show_default=True)
@click.option("--max-steps", type=click.IntRange(1), help="Stop after this many optimiser steps (overrides --epochs).")
@click.option(
    "--max-length",
    type=click.IntRange(16),
    default=DEFAULTS.max_length,
    show_default=True,
    help="Tokens per example (prompt and answer); longer examples are left out and counted.",
)
@click.option("--batch-size", type=click.IntRange(1), default=DEFAULTS.batch_size, show_default=True)
@click.option(
    "--gradient-accumulation", type=click.IntRange(1), default=DEFAULTS.gradient_accumulation, show_default=True
)
@click.option("--rank", type=click.IntRange(1), default=DEFAULTS.rank, show_default=True, help="LoRA rank.")
@click.option("--alpha", type=click.IntRange(1), default=DEFAULTS.alpha, show_default=True, help="LoRA alpha.")
@click.option(
    "--target-modules",
    default=",".join(DEFAULTS.target_modules),
    show_default=True,
    help="Comma-separated module names LoRA adapts.",
)
@click.option(
    "--val-share",
    type=click.FloatRange(0, 1, max_open=True),
    default=DEFAULTS.val_share,
    show_default=True,
    help="Share of the examples held out for the validation loss.",
)
@click.option(
    "--save-steps",
    type=click.IntRange(1),
    default=DEFAULTS.save_steps,
    show_default=True,
    help="Checkpoint every N steps (and at the end).",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 (auto: cuda when present).")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in OUTDIR/checkpoints.")
@click.option("--force", is_flag=True, help="Start over in an OUTDIR that holds a run.")
@click.option("--no-progress", is_flag=True)
def finetune(
    task, labels, reports, base, outdir, prompt, id_col, text_col, lr, epochs, max_steps, max_length, batch_size,
    gradient_accumulation, rank, alpha, target_modules, val_share, save_steps, device, seed, resume, force,
    no_progress,
) -> None:  # fmt: skip
    """Fine-tune a LoRA adapter of the local model BASE on the labelled rows of LABELS (from `r2l label`).

    Weak labels → a fine-tuned local labeller: a teacher (rules, a large model) labels REPORTS with
    `r2l label`, this trains a small local model on those labels, and the adapter then labels on
    its own. Check its labels against gold labels with `r2l eval-labels`.

    Each example is TASK's prompt variant applied to the report (from --reports) and, as the answer,
    the stored validated label. Writes OUTDIR/adapter_model.safetensors, training_log.csv,
    finetune.json and ADAPTER.md; label with it through
    `r2l label TASK REPORTS -o OUT --backend transformers --model BASE -O adapter=OUTDIR`.
    """
    from report2label.core.finetune import finetune as run_finetune

    recipe = Recipe(
        rank=rank,
        alpha=alpha,
        target_modules=tuple(m.strip() for m in target_modules.split(",") if m.strip()),
        lr=lr,
        epochs=epochs,
        max_length=max_length,
        batch_size=batch_size,
        gradient_accumulation=gradient_accumulation,
        val_share=val_share,
        save_steps=save_steps,
        max_steps=max_steps,
        seed=seed,
    )
    summary = run_finetune(
        task,
        labels,
        reports,
        base,
        outdir,
        recipe=recipe,
        prompt=prompt,
        id_col=id_col,
        text_col=text_col,
        device=device,
        resume=resume,
        force=force,
        show_progress=not no_progress,
    )
    c = summary.counts
    resumed = f" (resumed from step {summary.resumed_from})" if summary.resumed_from else ""
    eval_loss = "–" if summary.eval_loss is None else f"{summary.eval_loss:.4f}"
    console.print(
        f"{c['examples']} examples ({summary.train_examples} train, {summary.val_examples} validation) of "
        f"{c['labels']} label rows; left out: {c['not_labelled']} not labelled, {c['no_report_text']} without report "
        f"text, {c['report_text_changed']} with a changed report text, {c['too_long']} over --max-length"
    )
    console.print(
        f"{summary.steps} steps{resumed} in {summary.seconds:.1f} s ({summary.steps_per_second:.2f} steps/s); "
        f"training loss {summary.train_loss:.4f}, validation loss {eval_loss}"
    )
    console.print(f"adapter: {summary.adapter}")
