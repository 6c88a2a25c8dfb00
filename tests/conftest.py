"""Shared fixtures: the CLI runner, an installed outside plugin, small report tables."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from report2label.cli.main import cli
from report2label.core.plugins import pm

HERE = Path(__file__).parent
R2L = [sys.executable, "-m", "report2label.cli"]


@pytest.fixture
def r2l():
    """Run ``r2l ARGS`` in-process; returns click's Result."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def r2l_process():
    """Run ``r2l ARGS`` in a fresh process (sees the environment, including PYTHONPATH)."""

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([*R2L, *map(str, args)], capture_output=True, text=True, **kwargs)

    return run


@pytest.fixture
def outside_plugin(tmp_path, monkeypatch):
    """Install tests/fake_plugin.py as the package ``r2l-fake`` with a report2label entry point."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(HERE / "fake_plugin.py", site / "r2l_fake.py")
    info = site / "r2l_fake-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: r2l-fake\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text("[report2label]\nfake = r2l_fake\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    yield site
    if pm.has_plugin("fake"):
        pm.unregister(name="fake")
    sys.modules.pop("r2l_fake", None)


def write_reports(path: Path, texts: list[str], ids: list[str] | None = None) -> Path:
    ids = ids or [f"r{i}" for i in range(len(texts))]
    pd.DataFrame({"report_id": ids, "text": texts}).to_csv(path, index=False)
    return path
