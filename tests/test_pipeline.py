"""r2l run: the whole study from one TOML file; complete steps are skipped, errors name the key."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from report2label.core.errors import R2LError
from report2label.core.pipeline import _train_state, load_pipeline, run_pipeline
from report2label.core.training.recipe import effective_recipe
from report2label.plugins.ankle_fracture import TASK

MINIMAL = 'task = "ankle-fracture"\n[reports]\npath = "r.csv"\n[images]\npath = "i.csv"\n'


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The example with its pipeline.toml, set smaller still for the test, run once."""
    from report2label.plugins.ankle_fracture.example import write_example

    folder = tmp_path_factory.mktemp("study")
    write_example(folder, seed=4, n_reports=100, image_size=96)
    toml = (folder / "pipeline.toml").read_text()
    assert "image_size = 64" in toml and 'gold_col = "gold_fracture"' in toml
    (folder / "pipeline.toml").write_text(
        toml.replace("image_size = 64", "image_size = 32").replace("epochs = 8", "epochs = 2")
    )
    summary = run_pipeline(folder / "pipeline.toml", show_progress=False)
    return folder, summary


def test_runs_every_step_and_reports(study):
    folder, summary = study
    assert summary.steps["dataset"] == "written" and summary.steps["train"] == "trained"
    assert summary.steps["evaluate"] == "evaluated" and summary.steps["export"] == "exported"
    assert summary.label_accuracy == {"fracture": 1.0}
    assert 0 <= summary.test_auc["fracture"] <= 1
    assert summary.model == folder / "model.onnx" and (folder / "MODEL.md").is_file()


def test_rerun_skips_complete_steps(study, r2l):
    folder, _ = study
    result = r2l("run", folder / "pipeline.toml", "--no-progress")
    assert result.exit_code == 0, result.output
    for text in (
        "0 asked",
        "skipped (up to date)",
        "skipped (finished)",
        "label accuracy vs gold: fracture 1.000",
        "test ROC-AUC: fracture",
        "ONNX model:",
    ):
        assert text in result.output


def test_predict_on_the_example_images(study, r2l):
    folder, _ = study
    result = r2l("predict", folder / "model.onnx", folder / "images", "-o", folder / "predictions.csv")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(folder / "predictions.csv")
    assert len(table) == len(pd.read_csv(folder / "images.csv")) and table["fracture_decision"].isin([0, 1]).all()


def test_interrupted_or_changed_training_is_resumed_or_redone(study):
    folder, _ = study
    run = json.loads((folder / "run" / "run.json").read_text())
    recipe = effective_recipe(TASK, image_size=32, epochs=2, batch_size=16).model_dump(mode="json")
    assert _train_state(folder / "run", folder / "dataset", recipe) == "finished"
    (folder / "run" / "run.json").write_text(json.dumps(run | {"status": "training"}))
    try:
        assert _train_state(folder / "run", folder / "dataset", recipe) == "resume"
        other = effective_recipe(TASK, image_size=32, epochs=3, batch_size=16).model_dump(mode="json")
        assert _train_state(folder / "run", folder / "dataset", other) == "fresh"
    finally:
        (folder / "run" / "run.json").write_text(json.dumps(run))


@pytest.mark.parametrize(
    "content, message",
    [
        (
            'task = "ankle-fracture"\n[reports]\npath = "r.csv"\n[images]\npath = "i.csv"\n[train]\nepochs = 0\n',
            "pipeline.toml: train.epochs: Input should be greater than or equal to 1",
        ),
        (
            'task = "ankle-fracture"\n[reports]\npath = "r.csv"\n[images]\npath = "i.csv"\n[train]\nepoch = 3\n',
            "pipeline.toml: train.epoch: Extra inputs are not permitted",
        ),
        ('task = "ankle-fracture"\n[images]\npath = "i.csv"\n', "pipeline.toml: reports: Field required"),
        ('task = "ankle-fracture\n', "pipeline.toml: not valid TOML"),
    ],
)
def test_config_errors_name_the_key(tmp_path, content, message):
    path = tmp_path / "pipeline.toml"
    path.write_text(content)
    with pytest.raises(R2LError, match=message.replace(".", r"\.")):
        load_pipeline(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (MINIMAL.replace("ankle-fracture", "knee"), "pipeline.toml: task: unknown task 'knee' (available: "),
        (MINIMAL + '[label]\nbackend = "gpt"\n', "pipeline.toml: label.backend: unknown labelling backend 'gpt'"),
        (
            MINIMAL + "[label]\noptions = {temperature = 1}\n",
            "pipeline.toml: label.options: backend 'rules': option 'temperature': Extra inputs are not permitted",
        ),
        (
            MINIMAL + '[label]\nprompt = "fr"\n',
            "pipeline.toml: label.prompt: task 'ankle-fracture' has no prompt variant 'fr'",
        ),
        (
            MINIMAL + '[train]\ndevice = "tpu"\n',
            "pipeline.toml: train.device: unknown trainer 'tpu' (available: cpu, cuda, cuda-compile)",
        ),
    ],
)
def test_names_are_checked_with_the_file(tmp_path, content, message):
    path = tmp_path / "pipeline.toml"
    path.write_text(content)
    with pytest.raises(R2LError) as raised:
        load_pipeline(path)
    assert str(raised.value).startswith(f"{tmp_path}/{message}")


def test_a_bad_name_stops_the_run_before_torch_is_imported(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_text(MINIMAL + '[train]\ndevice = "tpu"\n')
    code = (
        "import sys\n"
        "from report2label.core.errors import R2LError\n"
        "from report2label.core.pipeline import run_pipeline\n"
        "try:\n    run_pipeline(sys.argv[1], show_progress=False)\n"
        "except R2LError as exc:\n    print(exc)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert result.stdout.splitlines() == [
        f"{path}: train.device: unknown trainer 'tpu' (available: cpu, cuda, cuda-compile)",
        "False",
    ], result.stderr


def test_no_labelled_report_stops_with_exit_code_3(r2l, tmp_path):
    pd.DataFrame({"report_id": ["a", "b", "c"], "text": ["", " ", ""]}).to_csv(tmp_path / "r.csv", index=False)
    (tmp_path / "pipeline.toml").write_text(MINIMAL)
    result = r2l("run", tmp_path / "pipeline.toml", "--no-progress")
    assert result.exit_code == 3
    assert [line for line in result.output.splitlines() if line.startswith("Error: ")] == [
        f"Error: {tmp_path / 'labels' / 'labels.csv'}: labelling left no labelled report "
        "(3 failed: empty report); nothing to train on"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels", "pipeline.toml", "r.csv"]


def test_failed_reports_finish_the_run_with_exit_code_3(study, r2l, tmp_path):
    """A report changed to an empty text: it fails, the rest is relabelled into a new data set and model."""
    folder = tmp_path / "study"
    shutil.copytree(study[0], folder)
    reports = pd.read_csv(folder / "reports.csv")
    reports.loc[0, "text"] = ""
    reports.to_csv(folder / "reports.csv", index=False)
    result = r2l("run", folder / "pipeline.toml", "--no-progress")
    assert result.exit_code == 3, result.output
    for text in ("99 labelled, 1 failed", "written", "trained", "evaluated", "exported"):
        assert text in result.output, text
    assert "1 reports failed labelling; rerun to try them again" in result.output
    assert (folder / "model.onnx").is_file()
