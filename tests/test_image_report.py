"""Images → report → label, against a scripted OpenAI-compatible multimodal server on 127.0.0.1.

The server is a stand-in (no vision-language model can run here): it answers a scripted report
per image, chosen by the image's bytes, and counts the requests per image.
"""

import base64
import hashlib
import json
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import R2L, free_port
from PIL import Image

from report2label.core import label
from report2label.core.describe import describe
from report2label.core.errors import R2LError

pytest.importorskip("openai")

SCRIPT = [
    "FINDINGS: The heart is enlarged. No pleural effusion. IMPRESSION: Cardiomegaly.",
    "FINDINGS: Heart size is normal. The lungs are clear. IMPRESSION: No acute cardiopulmonary abnormality.",
    "FINDINGS: Large right pleural effusion. IMPRESSION: Right pleural effusion.",
    "FINDINGS: Right pneumothorax. IMPRESSION: Pneumothorax.",
    "FINDINGS: Normal heart size. No pneumothorax. IMPRESSION: Normal chest.",
    "FINDINGS: Heart size is normal. Left lower lobe consolidation. IMPRESSION: Pneumonia is possible.",
]


class ScriptedServer:
    """``/v1/models`` and ``/v1/chat/completions`` with a scripted report per image; ``answer`` requests are
    answered at once, later ones wait until :meth:`release` (so a test can kill the client between them)."""

    def __init__(self, reports: dict[str, str], answer: int | None = None) -> None:
        self.reports, self.answer, self.asked = reports, answer, []
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "scripted-vlm", "object": "model", "owned_by": "test"}]})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content = request["messages"][0]["content"]
                url = next(part["image_url"]["url"] for part in content if part["type"] == "image_url")
                key = hashlib.sha256(base64.b64decode(url.partition(",")[2])).hexdigest()
                server.asked.append(key)
                if server.answer is not None and len(server.asked) > server.answer:
                    server.released.wait(60)
                message = {"role": "assistant", "content": server.reports[key]}
                self._send(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "scripted-vlm",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                )

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.release()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def images(tmp_path) -> tuple[Path, dict[str, str]]:
    """Six PNGs (different pixels) in images.csv, and each image's hash → its scripted report."""
    rows, reports = [], {}
    (tmp_path / "images").mkdir()
    for i, text in enumerate(SCRIPT):
        name = f"images/cxr{i}.png"
        pixels = np.random.default_rng(i).integers(0, 255, (32, 32), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / name)
        reports[hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()] = text
        rows.append({"image": name, "image_id": f"I{i}"})
    pd.DataFrame(rows).to_csv(tmp_path / "images.csv", index=False)
    return tmp_path / "images.csv", reports


def stored(store: Path) -> int:
    import sqlite3

    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM reports WHERE status = 'described'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_sigkill_and_rerun_ask_nothing_twice_then_label(images, tmp_path):
    table, reports = images
    server = ScriptedServer(reports, answer=3)
    out = tmp_path / "generated"
    command = [*R2L, "describe", table, "-o", out, "--id-col", "image_id", "-O", f"base_url={server.url}",
               "-O", "concurrency=1", "--no-progress"]  # fmt: skip
    try:
        process = subprocess.Popen(list(map(str, command)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while stored(out / "reports.sqlite") < 3 or len(server.asked) < 4:
            assert process.poll() is None and time.monotonic() < deadline, "describe ended or stalled"
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait()
        answered = server.asked[:3]
        server.release()
        server.answer = None
        first = len(server.asked)
        rerun = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stderr
        again = server.asked[first:]
        assert not set(again) & set(answered), "an image answered before the kill was asked again"
        assert sorted(again) == sorted(set(reports) - set(answered)) and len(again) == 3
        again_again = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=120)
        assert again_again.returncode == 0 and len(server.asked) == first + 3, "a third run asks nothing"
    finally:
        server.close()
    generated = pd.read_csv(out / "reports.csv")
    assert generated["report_id"].tolist() == [f"I{i}" for i in range(6)]
    assert generated["text"].tolist() == SCRIPT and (generated["status"] == "described").all()
    assert (generated["backend"] == "openai-vision").all() and (generated["model"] == "scripted-vlm").all()
    assert generated["image"].tolist() == [f"images/cxr{i}.png" for i in range(6)]
    summary = label("chest-xray", out / "reports.csv", tmp_path / "labels", show_progress=False)
    assert summary.labelled == 6
    labels = pd.read_csv(tmp_path / "labels" / "labels.csv").set_index("report_id")
    assert labels.loc["I0", "cardiomegaly"] == "positive" and labels.loc["I1", "cardiomegaly"] == "negative"
    assert labels.loc["I2", "pleural_effusion"] == "positive" and labels.loc["I3", "pneumothorax"] == "positive"


def test_a_server_outside_this_network_is_refused_before_any_image_is_read(images, tmp_path):
    table, _ = images
    with pytest.raises(R2LError, match="8.8.8.8 is not a loopback or private address"):
        describe(table, tmp_path / "out", options={"base_url": "http://8.8.8.8/v1"}, show_progress=False)
    assert not (tmp_path / "out").exists()


def test_a_missing_image_is_named(images, tmp_path):
    table, _ = images
    (table.parent / "images" / "cxr4.png").unlink()
    with pytest.raises(R2LError, match=r"images.csv: row 5: no such image file .*cxr4.png.* \(1 missing\)"):
        describe(table, tmp_path / "out", options={"base_url": "http://127.0.0.1:9/v1"}, show_progress=False)


def test_a_server_that_is_down_gives_failed_rows_and_exit_3(images, tmp_path, r2l):
    table, _ = images
    result = r2l("describe", table, "-o", tmp_path / "out", "--model", "m", "-O",
                 f"base_url=http://127.0.0.1:{free_port()}/v1", "-O", "retries=0", "--no-progress")  # fmt: skip
    assert result.exit_code == 3 and "6 failed" in result.output and "unreachable" in result.output
    generated = pd.read_csv(tmp_path / "out" / "reports.csv")
    assert (generated["status"] == "failed").all() and generated["text"].isna().all()


def test_a_describer_plugin_must_register_a_describer_class():
    import types

    from report2label.core import hookimpl, registry
    from report2label.core.plugins import pm, register

    plugin = types.SimpleNamespace(register_describers=hookimpl(lambda register: register(object())))
    register(plugin, name="bad-describer")
    try:
        with pytest.raises(
            R2LError,
            match=r"plugin .bad-describer.: register_describers got a object .*expected a subclass of report2label",
        ):
            registry.describers()
    finally:
        pm.unregister(name="bad-describer")
    assert "openai-vision" in registry.describers()
