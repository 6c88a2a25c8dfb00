"""``r2l new-plugin``: the package it writes installs with pip, and ``r2l tasks`` then lists its task.

The install goes into a throwaway venv that sees this environment's packages (report2label,
setuptools, pip, pytest) through a ``.pth`` file, so pip needs no network: ``--no-index
--no-deps --no-build-isolation``.
"""

from __future__ import annotations

import os
import py_compile
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from report2label.cli.new_plugin import default_label, write_plugin

FILES = {
    "pyproject.toml",
    "README.md",
    "src/r2l_knee_effusion/__init__.py",
    "src/r2l_knee_effusion/task.py",
    "src/r2l_knee_effusion/example.py",
    "tests/test_plugin.py",
}


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def run(venv: Path, *args, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``venv``'s python with ARGS, with none of this environment's variables (PYTHONPATH, R2L_PLUGINS)."""
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin", "HOME": str(venv.parent), "PIP_NO_INPUT": "1"}
    command = [venv / "bin" / "python", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """A throwaway venv with the package ``r2l new-plugin knee-effusion`` wrote, pip-installed (editable)."""
    from click.testing import CliRunner

    from report2label.cli.main import cli

    work = tmp_path_factory.mktemp("new-plugin")
    package = work / "r2l-knee-effusion"
    result = CliRunner().invoke(cli, ["new-plugin", "knee-effusion", "-o", str(package)])
    assert result.exit_code == 0, result.output
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    purelib = run(venv, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    # addsitedir (not a bare path) so this environment's own .pth files, editable installs included, apply.
    lines = [f"import site; site.addsitedir({folder!r})" for folder in site.getsitepackages()]
    (Path(purelib) / "r2l_this_environment.pth").write_text("\n".join(lines) + "\n")
    pip = ("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--no-cache-dir")
    done = run(venv, *pip, "--disable-pip-version-check", "-e", package)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv, package


def test_the_package_installs_and_r2l_tasks_lists_it(installed):
    venv, _ = installed
    tasks = run(venv, "-m", "report2label.cli", "tasks")
    assert tasks.returncode == 0, tasks.stderr
    assert "knee-effusion" in tasks.stdout and "en-zero-shot" in tasks.stdout and "resnet18" in tasks.stdout
    assert "ankle-fracture" in tasks.stdout  # the built-ins load beside it
    plugins = run(venv, "-m", "report2label.cli", "plugins")
    assert "knee_effusion" in plugins.stdout and "r2l-knee-effusion" in plugins.stdout
    assert "register_examples, register_tasks" in plugins.stdout


def test_the_packages_own_tests_pass(installed):
    venv, package = installed
    tests = run(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", package, cwd=package)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "3 passed" in tests.stdout


def test_the_example_writer_is_registered(installed, tmp_path):
    venv, _ = installed
    example = run(venv, "-m", "report2label.cli", "example", "knee-effusion", tmp_path / "demo", "--n-reports", 4)
    assert example.returncode == 0, example.stderr
    assert (tmp_path / "demo" / "reports.csv").exists() and len(list((tmp_path / "demo" / "images").iterdir())) == 4


def test_the_files_written(r2l, tmp_path):
    result = r2l("new-plugin", "knee-effusion", "-o", tmp_path / "pkg")
    assert result.exit_code == 0, result.output
    assert "r2l-knee-effusion" in result.output and "'effusion'" in result.output
    assert _files(tmp_path / "pkg") == FILES
    pyproject = (tmp_path / "pkg" / "pyproject.toml").read_text()
    assert '[project.entry-points.report2label]\nknee_effusion = "r2l_knee_effusion"' in pyproject
    for path in (tmp_path / "pkg").rglob("*.py"):
        py_compile.compile(str(path), doraise=True)


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("label", [None, "joint_effusion"])
def test_the_code_is_clean_for_ruff(tmp_path, language, label):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    write_plugin("knee-effusion", tmp_path, label=label, language=language)
    for command in (["check", "--isolated", "."], ["format", "--isolated", "--check", "."]):
        done = subprocess.run([ruff, *command], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "the plugin name is empty"),
        ("Knee", "plugin name 'Knee' has upper-case letters; use 'knee'"),
        ("knee effusion", "plugin name 'knee effusion' has ' '; use lower-case letters, digits and hyphens"),
        ("knee/x", "plugin name 'knee/x' has '/'"),
        ("3d-knee", "plugin name '3d-knee' must start with a letter"),
        ("knee-", "plugin name 'knee-' must not end with, or repeat, '-' or '_'"),
        ("knee--x", "must not end with, or repeat"),
        ("k" * 61, "is longer than 60 characters"),
        ("ankle-fracture", "a task named 'ankle-fracture' is installed already (plugin 'ankle_fracture')"),
    ],
)
def test_bad_names_are_one_line_errors(r2l, tmp_path, name, message):
    result = r2l("new-plugin", name, "-o", tmp_path / "pkg")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        ("Effusion", "use lower-case letters, digits and '_', starting with a letter"),
        ("joint-effusion", "use lower-case letters"),
        ("class", "it is a Python keyword"),
        ("json", "pydantic models reserve it"),
        ("model_size", "pydantic models reserve it"),
    ],
)
def test_a_bad_label_is_refused(r2l, tmp_path, label, problem):
    result = r2l("new-plugin", "knee-effusion", "--label", label, "-o", tmp_path / "pkg")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert f"label {label!r} cannot be an answer field: {problem}" in result.stderr
    assert not (tmp_path / "pkg").exists()


def test_the_default_label_is_the_names_last_word(r2l, tmp_path):
    assert default_label("knee-effusion") == "effusion" and default_label("lung_nodule") == "nodule"
    assert default_label("ct-3d") == "finding" and default_label("knee-json") == "finding"
    result = r2l("new-plugin", "hip", "-o", tmp_path / "pkg")
    assert result.exit_code == 0 and "label 'hip'" in result.output


def test_a_non_empty_folder_needs_force_and_nothing_is_overwritten(r2l, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    refused = r2l("new-plugin", "knee-effusion", "-o", folder)
    assert refused.exit_code == 1 and "folder is not empty; choose another or pass --force" in refused.stderr
    assert _files(folder) == {"notes.txt"}
    forced = r2l("new-plugin", "knee-effusion", "-o", folder, "--force")
    assert forced.exit_code == 0, forced.output
    assert _files(folder) == FILES | {"notes.txt"} and (folder / "notes.txt").read_text() == "mine"
    (folder / "README.md").write_text("my readme")
    again = r2l("new-plugin", "knee-effusion", "-o", folder, "--force")
    assert again.exit_code == 1
    assert "README.md" in again.stderr and "and 3 more: already there; new-plugin overwrites no file" in again.stderr
    assert (folder / "README.md").read_text() == "my readme"


def test_a_file_as_the_folder_is_refused(r2l, tmp_path):
    (tmp_path / "file").write_text("x")
    result = r2l("new-plugin", "knee-effusion", "-o", tmp_path / "file", "--force")
    assert result.exit_code == 1 and "exists and is not a folder" in result.stderr
    assert (tmp_path / "file").read_text() == "x"
