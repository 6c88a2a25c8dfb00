"""Multi-label, four-state labels end to end: chest reports → rules labels → --uncertain → training with
masked BCE → per-label evaluation with macro/micro AUC → ONNX with a probability per label → predict."""

import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from conftest import write_reports
from PIL import Image

from report2label.core.data.cache import load_split
from report2label.core.data.dataset import build_dataset
from report2label.core.data.folder import DatasetFolder
from report2label.core.errors import R2LError
from report2label.core.evaluate import evaluate
from report2label.core.export import export
from report2label.core.pipeline import _dataset_current, load_pipeline
from report2label.core.predict import predict
from report2label.core.task import training_value
from report2label.core.training.loop import train
from report2label.core.training.loss import masked_bce, pos_weights
from report2label.core.training.recipe import effective_recipe
from report2label.plugins.chest_xray import TASK

LABELS = list(TASK.labels)
SENTENCES = {
    "cardiomegaly": ("The heart is enlarged.", "Heart size is normal.", "Possible mild cardiomegaly."),
    "pleural_effusion": ("Small right pleural effusion.", "No pleural effusion.", "Questionable pleural effusion."),
    "pneumothorax": ("Small left apical pneumothorax.", "No pneumothorax.", "Possible tiny right pneumothorax."),
    "edema": ("Mild pulmonary edema.", "No pulmonary edema.", "Findings may represent early interstitial edema."),
}
"""Per finding: a positive, a negative and an uncertain sentence; each finding brightens its own quadrant."""
QUADRANTS = {
    "cardiomegaly": (slice(0, 16), slice(0, 16)),
    "pleural_effusion": (slice(0, 16), slice(16, 32)),
    "pneumothorax": (slice(16, 32), slice(0, 16)),
    "edema": (slice(16, 32), slice(16, 32)),
}
SMALL = TASK.model_copy(update={"recipe": effective_recipe(TASK).model_copy(update={"architecture": "test_resnet"})})


def write_study(folder, n: int = 72, seed: int = 0):
    """Reports whose findings are drawn at random (some stated, some negated, some uncertain, some not mentioned)."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        states = rng.choice(4, size=len(SENTENCES), p=[0.4, 0.25, 0.15, 0.2])
        sentences = [SENTENCES[name][s] for name, s in zip(SENTENCES, states, strict=True) if s < 3]
        texts.append("Frontal chest radiograph. " + (" ".join(sentences) or "No acute cardiopulmonary process."))
    return write_reports(folder / "reports.csv", texts)


def read_splits(folder) -> pd.DataFrame:
    """The three split CSVs of a data set, concatenated."""
    return pd.concat(pd.read_csv(folder / f"{split}_dataframe.csv") for split in ("train", "val", "test"))


def write_images(folder, labels: pd.DataFrame, seed: int = 0):
    """A 32x32 PNG per labelled report, brighter in a finding's quadrant the surer the report is of it."""
    rng = np.random.default_rng(seed)
    strength = {"positive": 0.5, "uncertain": 0.3}
    rows = []
    for i, row in labels.iterrows():
        image = rng.uniform(0.1, 0.4, (32, 32))
        for name, quadrant in QUADRANTS.items():
            image[quadrant] += strength.get(row[name], 0.0)
        path = folder / "images" / f"{row['report_id']}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)
        rows.append({"image": f"images/{path.name}", "report_id": row["report_id"], "patient_id": f"p{i // 2}"})
    pd.DataFrame(rows).to_csv(folder / "images.csv", index=False)
    return folder / "images.csv"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Labelled by the rules backend through the CLI, with images painted from the labels."""
    from click.testing import CliRunner

    from report2label.cli.main import cli

    folder = tmp_path_factory.mktemp("chest")
    reports = write_study(folder)
    args = ["label", "chest-xray", str(reports), "-o", str(folder / "labels"), "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    labels = pd.read_csv(folder / "labels" / "labels.csv")
    return folder, labels, write_images(folder, labels)


@pytest.fixture(scope="module")
def dataset(study):
    """``r2l dataset --uncertain ignore``."""
    from click.testing import CliRunner

    from report2label.cli.main import cli

    folder, _, images = study
    args = ["dataset", "chest-xray", "--labels", str(folder / "labels" / "labels.csv"), "--images", str(images)]
    result = CliRunner().invoke(cli, [*args, "-o", str(folder / "ds"), "--uncertain", "ignore", "--seed", "1"])
    assert result.exit_code == 0, result.output
    return folder / "ds"


@pytest.fixture(scope="module")
def one_thread():
    """Convolutions this small gain nothing from threads, and threads spin for seconds on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def run(dataset, one_thread, tmp_path_factory):
    """A tiny model (timm's test_resnet, 32px, 10 epochs) trained on the CPU, then evaluated."""
    rundir = tmp_path_factory.mktemp("chest-run") / "run"
    train(SMALL, dataset, rundir, epochs=10, image_size=32, batch_size=8, show_progress=False)
    evaluate(rundir, n_boot=50, show_progress=False)
    return rundir


@pytest.fixture(scope="module")
def exported(run, one_thread, tmp_path_factory):
    return export(run, tmp_path_factory.mktemp("chest-model") / "chest.onnx")


def test_masked_target_adds_neither_loss_nor_gradient():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.3, 4.0, -2.0]], requires_grad=True)
    target = torch.tensor([[1.0, float("nan"), 0.0], [0.0, 1.0, float("nan")]])
    loss = masked_bce(logits, target, pos_weight=torch.tensor([2.0, 3.0, 0.5]))
    loss.backward()
    known = ~torch.isnan(target)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[known], target[known], pos_weight=torch.tensor([2.0, 3.0, 0.5]).expand(2, 3)[known]
    )
    assert torch.allclose(loss, expected)
    assert logits.grad[0, 1] == 0 and logits.grad[1, 2] == 0 and (logits.grad[known] != 0).all()
    moved = logits.detach().clone()
    moved[0, 1], moved[1, 2] = 50.0, -50.0
    assert torch.allclose(masked_bce(moved, target, pos_weight=torch.tensor([2.0, 3.0, 0.5])), loss)
    full = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    assert torch.allclose(masked_bce(logits, full), torch.nn.BCEWithLogitsLoss()(logits, full))
    assert masked_bce(logits, torch.full((2, 3), float("nan"))) == 0


def test_pos_weight_per_label_over_known_targets():
    nan = float("nan")
    labels = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [0, nan, 0, 1], [nan, 1, 0, 1], [0, 0, 0, 1]], dtype=np.float32)
    assert pos_weights(labels).tolist() == [3.0, 3.0, 1.0, 1.0]  # no positive / no negative: 1


def test_uncertain_policies_and_nan_masks(study, dataset, tmp_path):
    folder, labels, images = study
    info = json.loads((dataset / "dataset.json").read_text())
    assert info["uncertain"] == "ignore" and info["label_columns"] == LABELS and not info["balanced"]
    table = read_splits(dataset)
    assert list(table.columns) == ["image", *LABELS, "report_id", "patient_id"]
    merged = table.merge(labels, on="report_id", suffixes=("", "_state"))
    for name in TASK.state_labels:
        expected = merged[f"{name}_state"].map(lambda state: training_value(state, "ignore"))
        assert np.allclose(merged[name], expected, equal_nan=True), name
    uncertain = (merged[[f"{n}_state" for n in TASK.state_labels]] == "uncertain").to_numpy()
    assert uncertain.sum() > 5 and np.isnan(merged[list(TASK.state_labels)].to_numpy()[uncertain]).all()
    assert set(table["normal"]) <= {0, 1}, "a computed 0/1 label is never masked"
    assert any("of 'fracture'" in w for w in info["warnings"]), "a label with one class is a warning, not an error"
    for policy, value in (("ones", 1), ("zeros", 0)):
        build_dataset("chest-xray", folder / "labels" / "labels.csv", images, tmp_path / policy, uncertain=policy)
        other = read_splits(tmp_path / policy).merge(labels, on="report_id", suffixes=("", "_state"))
        assert not other[LABELS].isna().any().any()
        assert (other["pleural_effusion"][other["pleural_effusion_state"] == "uncertain"] == value).all()


def test_counts_and_masked_cells_per_split(dataset):
    info = json.loads((dataset / "dataset.json").read_text())
    for split, counts in info["counts"].items():
        frame = pd.read_csv(dataset / f"{split}_dataframe.csv")
        for name in LABELS:
            assert counts[f"{name}=1"] == (frame[name] == 1).sum() and counts[f"{name}=0"] == (frame[name] == 0).sum()
            assert counts.get(f"{name}=masked", 0) == frame[name].isna().sum()


def test_cache_carries_nan_and_is_keyed_by_the_labels(study, tmp_path):
    folder, _, images = study
    out, recipe = tmp_path / "ds", effective_recipe(TASK, image_size=32)
    build_dataset("chest-xray", folder / "labels" / "labels.csv", images, out, uncertain="ignore")
    split = load_split(out, "train", recipe, LABELS, show_progress=False)
    assert split.labels.dtype == np.float32 and np.isnan(split.labels).any()
    before = DatasetFolder(out).cached("train", recipe.preprocessing_hash)[0].name
    build_dataset("chest-xray", folder / "labels" / "labels.csv", images, out, uncertain="ones", force=True)
    assert DatasetFolder(out).cached("train", recipe.preprocessing_hash)[0].name != before
    assert not np.isnan(load_split(out, "train", recipe, LABELS, show_progress=False).labels).any()


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [("normal", 2, "Input should be 0 or 1"), ("edema", "maybe", "Input should be 'positive'")],
)
def test_values_outside_the_answer_model_are_refused(study, tmp_path, column, value, reason):
    folder, labels, images = study
    bad = labels.copy()
    bad[column] = bad[column].astype(object)
    bad.loc[3, column] = value
    bad.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(R2LError, match=rf"labels.csv: row 4: {column} = {value!r} is not an answer") as raised:
        build_dataset("chest-xray", tmp_path / "labels.csv", images, tmp_path / "ds")
    assert reason in str(raised.value)


def test_unknown_policy_is_refused(study, tmp_path):
    folder, _, images = study
    with pytest.raises(R2LError, match="--uncertain 'half': choose one of ones, zeros, ignore"):
        build_dataset("chest-xray", folder / "labels" / "labels.csv", images, tmp_path / "ds", uncertain="half")


def test_pipeline_policy_is_validated_and_rebuilds_the_dataset(study, dataset, tmp_path):
    folder, _, images = study
    toml = tmp_path / "pipeline.toml"
    base = 'task = "chest-xray"\n[reports]\npath = "r.csv"\n[images]\npath = "i.csv"\n[dataset]\n'
    toml.write_text(base + 'uncertain = "half"\n')
    with pytest.raises(R2LError, match=r"dataset.uncertain: Input should be 'ones', 'zeros' or 'ignore'"):
        load_pipeline(toml)
    toml.write_text(base + 'uncertain = "ignore"\n')
    assert load_pipeline(toml).dataset.uncertain == "ignore"
    labels = folder / "labels" / "labels.csv"
    assert _dataset_current(dataset, labels, images, "ignore") and not _dataset_current(dataset, labels, images, "ones")


def test_training_history_per_label(run):
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 10 and np.isfinite(history[["train_loss", "val_loss", "val_auc"]]).all().all()
    assert {f"val_auc_{name}" for name in LABELS} <= set(history.columns)
    assert history["val_auc_fracture"].isna().all(), "a label with one class has no AUC"


def test_evaluation_per_label_with_masks(run, dataset):
    report = json.loads((run / "metrics.json").read_text())
    test = pd.read_csv(dataset / "test_dataframe.csv")
    assert list(report["labels"]) == LABELS
    for name, values in report["labels"].items():
        assert values["n"] == test[name].notna().sum() and values["masked"] == test[name].isna().sum()
        assert 0 <= values["threshold"] <= 1
        defined = test[name].dropna().nunique() == 2
        assert np.isfinite(values["metrics"]["auc"]["value"]) == defined, name
        assert defined or any(w.startswith(f"{name}: split 'test' has one class") for w in report["warnings"])
    assert report["macro_auc"]["value"] >= 0.75 and report["micro_auc"]["value"] >= 0.8, "the quadrants are learnt"
    assert report["macro_auc"]["low"] <= report["macro_auc"]["value"] <= report["macro_auc"]["high"]
    predictions = pd.read_csv(run / "test_predictions.csv")
    assert predictions["edema_true"].isna().sum() == test["edema"].isna().sum()
    assert (run / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_onnx_has_a_probability_and_a_threshold_per_label(exported, run):
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    report = json.loads((run / "metrics.json").read_text())
    assert json.loads(meta["r2l.labels"]) == LABELS
    assert json.loads(meta["r2l.thresholds"]) == [report["labels"][name]["threshold"] for name in LABELS]
    assert session.get_outputs()[0].shape[1] == 14
    out = session.run(None, {"image": np.random.rand(3, 1, 32, 32).astype(np.float32)})[0]
    assert out.shape == (3, 14) and exported.parity.decisions_differ == 0
    card = exported.card.read_text()
    for text in ("Macro AUC", "U-Ignore", "`r2l dataset --uncertain ignore`", "| pleural_effusion |", "Warnings:"):
        assert text in card, text


def test_predict_writes_a_probability_and_a_decision_per_label(exported, run):
    expected = pd.read_csv(run / "test_predictions.csv")
    got = predict(exported.path, list(expected["image"]), show_progress=False)
    columns = [f"{name}_{kind}" for name in LABELS for kind in ("probability", "decision")]
    assert list(got.columns) == ["path", *columns, "error"] and len(columns) == 28
    thresholds = json.loads(exported.metadata["r2l.thresholds"])
    for name, threshold in zip(LABELS, thresholds, strict=True):
        assert np.allclose(got[f"{name}_probability"], expected[f"{name}_probability"], atol=1e-4)
        assert (got[f"{name}_decision"] == (got[f"{name}_probability"] >= threshold)).all()


def test_metadata_that_does_not_fit_the_output_is_refused(exported, tmp_path):
    import onnx

    proto = onnx.load(str(exported.path))
    for prop in proto.metadata_props:
        if prop.key == "r2l.labels":
            prop.value = json.dumps(LABELS[:13])
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(R2LError, match="names 13 labels and r2l.thresholds 14 thresholds for an output of 14"):
        predict(tmp_path / "bad.onnx", [tmp_path / "x.png"], show_progress=False)
