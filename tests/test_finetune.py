"""r2l finetune: LoRA on the rules backend's labels, two steps on the CPU, then labelling with the adapter."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("trl")
pytest.importorskip("xgrammar")


@pytest.fixture(scope="module")
def weak_labels(tmp_path_factory) -> dict[str, Path]:
    """A tiny random Llama (ChatML template) and the rules backend's labels of 10 synthetic ankle reports."""
    from report2label.core import label
    from report2label.plugins.ankle_fracture.example import write_example
    from report2label.testing.random_hf import write_random_llama

    folder = tmp_path_factory.mktemp("weak")
    write_example(folder / "example", seed=4, n_reports=10, image_size=64)
    label("ankle-fracture", folder / "example" / "reports.csv", folder / "labels", show_progress=False)
    return {
        "base": write_random_llama(folder / "base"),
        "labels": folder / "labels" / "labels.csv",
        "reports": folder / "example" / "reports.csv",
    }


def finetune_args(data: dict[str, Path], outdir: Path, *extra: str) -> list:
    return [
        "finetune", "ankle-fracture", data["labels"], "--reports", data["reports"], "--base", data["base"],
        "-o", outdir, "--batch-size", "2", "--max-length", "2048", "--save-steps", "1", "--no-progress", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def adapter(weak_labels, tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from report2label.cli.main import cli

    outdir = tmp_path_factory.mktemp("adapter") / "ankle-lora"
    result = CliRunner().invoke(cli, [str(a) for a in finetune_args(weak_labels, outdir, "--max-steps", "2")])
    assert result.exit_code == 0, result.output
    return outdir


def test_two_steps_write_an_adapter_a_log_and_a_card(adapter):
    summary = json.loads((adapter / "finetune.json").read_text())
    assert summary["steps"] == 2 and math.isfinite(summary["train_loss"]) and math.isfinite(summary["eval_loss"])
    assert summary["counts"]["examples"] == 10 and (summary["train_examples"], summary["val_examples"]) == (9, 1)
    assert summary["teacher"]["backend"] == ["rules"] and summary["teacher"]["model"][0].startswith("rules-")
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], sorted(config["target_modules"])) == (8, 16, ["q_proj", "v_proj"])
    log = pd.read_csv(adapter / "training_log.csv")
    losses = log["loss"].dropna()
    assert len(losses) == 2 and losses.map(math.isfinite).all()
    card = (adapter / "ADAPTER.md").read_text()
    assert "backend rules" in card and "10 examples" in card and "-O adapter=" in card


def test_the_adapter_loads_and_is_trained(adapter, weak_labels):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(weak_labels["base"], local_files_only=True)
    model = PeftModel.from_pretrained(base, adapter, local_files_only=True)
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert len(lora_b) == 4, "q_proj and v_proj of two layers"
    assert all(p.abs().sum() > 0 for p in lora_b), "LoRA's B starts at zero; two steps moved it"


def test_the_transformers_backend_labels_with_the_adapter(adapter, weak_labels, tmp_path, r2l):
    result = r2l(
        "label", "ankle-fracture", weak_labels["reports"], "-o", tmp_path / "out", "--backend", "transformers",
        "--model", weak_labels["base"], "-O", f"adapter={adapter}", "--no-progress",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert (table["status"] == "labelled").all() and (table["attempts"] == 1).all()
    assert table["model"].str.fullmatch(r"base\+lora:ankle-lora@[0-9a-f]{12}").all()


def test_a_run_resumes_from_its_last_checkpoint(weak_labels, tmp_path, r2l):
    outdir = tmp_path / "lora"
    assert r2l(*finetune_args(weak_labels, outdir, "--max-steps", "1")).exit_code == 0
    again = r2l(*finetune_args(weak_labels, outdir, "--max-steps", "2"))
    assert again.exit_code == 1 and "pass --resume to continue it or --force to start over" in again.output
    resumed = r2l(*finetune_args(weak_labels, outdir, "--max-steps", "2", "--resume"))
    assert resumed.exit_code == 0, resumed.output
    assert "2 steps (resumed from step 1)" in resumed.output
    summary = json.loads((outdir / "finetune.json").read_text())
    assert (summary["steps"], summary["resumed_from"]) == (2, 1)
    assert pd.read_csv(outdir / "training_log.csv")["loss"].dropna().size == 2, "step 1's loss kept, step 2 added"


def test_labels_of_another_task_are_refused(weak_labels, tmp_path, r2l):
    result = r2l(
        "finetune", "chest-xray", weak_labels["labels"], "--reports", weak_labels["reports"],
        "--base", weak_labels["base"], "-o", tmp_path / "lora",
    )  # fmt: skip
    assert result.exit_code == 1 and "holds labels of task 'ankle-fracture', not 'chest-xray'" in result.output
    assert not (tmp_path / "lora").exists()


def test_a_base_that_is_not_a_local_folder_is_refused_not_downloaded(tmp_path):
    from report2label.core.errors import R2LError
    from report2label.core.local_model import load_local_model

    for name in ("meta-llama/Llama-3.1-8B-Instruct", tmp_path):  # a Hub name; a folder without config.json
        with pytest.raises(R2LError, match="not a local model folder .* nothing is downloaded"):
            load_local_model(name, None)
