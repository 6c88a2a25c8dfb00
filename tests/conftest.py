"""Shared fixtures: the CLI runner, an installed outside plugin, small report tables."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
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


class Store:
    """A real S3 server (moto) on 127.0.0.1: write objects, name them by URL as a user would."""

    def __init__(self, port: int) -> None:
        from pyarrow import fs

        self.query = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        endpoint = f"127.0.0.1:{port}"
        self.fs = fs.S3FileSystem(
            endpoint_override=endpoint, scheme="http", region="us-east-1", allow_bucket_creation=True
        )
        self.fs.create_dir("reports")  # the bucket

    def put(self, path: Path, key: str) -> str:
        with self.fs.open_output_stream(f"reports/{key}") as out:
            out.write(path.read_bytes())
        return self.url(key)

    def url(self, key: str) -> str:
        return f"s3://reports/{key}?{self.query}"


@pytest.fixture(scope="session")
def store():
    """An S3 bucket on 127.0.0.1; credentials from the environment, no instance metadata asked."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("AWS_ACCESS_KEY_ID", "r2l"), ("AWS_SECRET_ACCESS_KEY", "r2l")):
            patch.setenv(name, value)
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        server.start()
        yield Store(server.get_host_and_port()[1])
        server.stop()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> dict[str, Path]:
    """Random-weight llama GGUFs (a few hundred KB): one with a system role, one Mistral-like without."""
    pytest.importorskip("llama_cpp")
    from report2label.testing.random_gguf import write_random_gguf

    folder = tmp_path_factory.mktemp("gguf")
    return {name: write_random_gguf(folder / f"tiny-{name}.gguf", template=name) for name in ("chatml", "mistral")}


@pytest.fixture(scope="session")
def small_example(tmp_path_factory) -> Path:
    """A 24-report synthetic ankle study (tiny images)."""
    from report2label.plugins.ankle_fracture.example import write_example

    folder = tmp_path_factory.mktemp("example")
    write_example(folder, seed=3, n_reports=24, image_size=64)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """A real llama.cpp server (``python -m llama_cpp.server``) on 127.0.0.1, started and stopped by tests."""

    def __init__(self, model: Path, port: int) -> None:
        self.model, self.port, self.process = model, port, None
        self.url = f"http://127.0.0.1:{port}/v1"

    def start(self) -> LlamaServer:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(self.model),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_ctx",
                "4096",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=1):
                    return self
            except OSError:
                assert self.process.poll() is None, "llama.cpp server exited"
                time.sleep(0.2)
        raise TimeoutError("llama.cpp server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def llama_server(tiny_gguf):
    pytest.importorskip("llama_cpp.server")
    server = LlamaServer(tiny_gguf["chatml"], free_port()).start()
    yield server
    server.stop()


def stored_rows(store: Path, status: str | None = None) -> int:
    """Rows in a label store (0 while it does not exist yet); for tests that kill a run halfway."""
    if not store.exists():
        return 0
    where = f" WHERE status = '{status}'" if status else ""
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return db.execute(f"SELECT COUNT(*) FROM labels{where}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="session")
def labelled_example(tmp_path_factory) -> Path:
    """The synthetic study (120 reports, 96px images) labelled by the rules backend."""
    from report2label.core import label
    from report2label.plugins.ankle_fracture.example import write_example

    folder = tmp_path_factory.mktemp("labelled")
    write_example(folder / "example", seed=5, n_reports=120, image_size=96)
    label("ankle-fracture", folder / "example" / "reports.csv", folder / "labels", show_progress=False)
    return folder


@pytest.fixture(scope="session")
def dataset(labelled_example, tmp_path_factory) -> Path:
    """The labelled ankle example's data set (split seed 1), shared by the tests that train on it
    (a module may define its own ``dataset``)."""
    from report2label.core.data.dataset import build_dataset

    folder = tmp_path_factory.mktemp("ds") / "ds"
    build_dataset(
        "ankle-fracture",
        labelled_example / "labels" / "labels.csv",
        labelled_example / "example" / "images.csv",
        folder,
        seed=1,
    )
    return folder


@pytest.fixture(scope="session")
def trained_run(labelled_example, tmp_path_factory) -> Path:
    """A finished and evaluated training run (32px, 2 epochs) on the labelled example."""
    from report2label.core.data.dataset import build_dataset
    from report2label.core.evaluate import evaluate
    from report2label.core.training.loop import train

    folder = tmp_path_factory.mktemp("trained")
    build_dataset(
        "ankle-fracture",
        labelled_example / "labels" / "labels.csv",
        labelled_example / "example" / "images.csv",
        folder / "dataset",
        seed=2,
    )
    train(
        "ankle-fracture",
        folder / "dataset",
        folder / "run",
        epochs=2,
        image_size=32,
        batch_size=16,
        show_progress=False,
    )
    evaluate(folder / "run", n_boot=100, show_progress=False)
    return folder / "run"


@pytest.fixture(scope="session")
def exported_model(trained_run, tmp_path_factory) -> Path:
    """``trained_run`` exported to ONNX (shared by the predict tests)."""
    from report2label.core.export import export

    return export(trained_run, tmp_path_factory.mktemp("model") / "model.onnx").path


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture
def browser():
    """Debian's Chromium, headless, through Playwright's Python package (no browser download), with
    the flags that keep it off the network; the test is skipped where the package is absent."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium package at /usr/bin/chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*flags, "--disable-sync", "--no-first-run"]
        )
        try:
            yield chromium
        finally:
            chromium.close()
