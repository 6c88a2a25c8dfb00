"""r2l serve: a real server process on 127.0.0.1 (torch unimportable), its REST API against r2l predict."""

import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from conftest import R2L, free_port
from PIL import Image
from test_images import RAMP, write_dicom

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("gradio")

BLOCKED = ("torch", "timm", "torchvision")


def torch_blocker(folder: Path) -> Path:
    """A PYTHONPATH entry under which torch, timm and torchvision raise ImportError."""
    for name in BLOCKED:
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is not allowed here')\n")
    return folder


class Server:
    """``r2l serve MODELS... OPTIONS`` in its own process on a free port of 127.0.0.1, torch unimportable."""

    def __init__(self, folder: Path, models: list[Path], *options: str) -> None:
        self.port, self.tmp = free_port(), folder / "tmp"
        self.tmp.mkdir(parents=True)
        self.url = f"http://127.0.0.1:{self.port}"
        blocker = torch_blocker(folder / "blocker")
        # TMPDIR: every temporary file of the server (uploads, Gradio's folder) lands where the test looks
        self.env = {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin", "TMPDIR": str(self.tmp), "HOME": str(folder)}
        command = [*R2L, "serve", *map(str, models), "--port", str(self.port), *options]
        self.log = (folder / "server.log").open("w")
        self.process = subprocess.Popen(command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                assert self.process.poll() is None, (folder / "server.log").read_text()
                time.sleep(0.3)
        self.stop()
        raise TimeoutError("r2l serve did not start")

    def healthy(self) -> bool:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()["status"] == "ok"

    def kept(self, uploads: list[Path]) -> list[Path]:
        """Files under the server's temporary folder that hold the bytes of one of ``uploads``."""
        sent = {p.read_bytes() for p in uploads}
        return [p for p in self.tmp.rglob("*") if p.is_file() and p.read_bytes() in sent]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def post(url: str, paths: list[Path], **kwargs) -> httpx.Response:
    files = [("files", (p.name, p.read_bytes())) for p in paths]
    return httpx.post(url, files=files, timeout=60, **kwargs)


@pytest.fixture(scope="module")
def images(trained_run, tmp_path_factory) -> list[Path]:
    """Four example PNGs, one of them as JPEG, and a MONOCHROME1 DICOM: what hospitals send."""
    folder = tmp_path_factory.mktemp("upload")
    pngs = [Path(p) for p in pd.read_csv(trained_run / "test_predictions.csv")["image"].head(4)]
    jpeg = folder / "view.jpg"
    Image.open(pngs[0]).convert("L").save(jpeg, quality=90)
    return [*pngs, jpeg, write_dicom(folder / "mono1.dcm", RAMP, photometric="MONOCHROME1")]


@pytest.fixture(scope="module")
def strict_model(exported_model, tmp_path_factory) -> Path:
    """A second model: the same network with every threshold at 0, so every decision is 1."""
    import onnx

    proto = onnx.load(str(exported_model))
    for prop in proto.metadata_props:
        if prop.key == "r2l.thresholds":
            prop.value = json.dumps([0.0] * len(json.loads(prop.value)))
    path = tmp_path_factory.mktemp("strict") / "strict.onnx"
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def server(exported_model, strict_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    blocked = subprocess.run(
        [sys.executable, "-c", "import torch"], env={"PYTHONPATH": str(torch_blocker(folder / "blocker"))}
    )
    assert blocked.returncode != 0, "the blocker must make torch unimportable"
    options = ("--max-files", "6", "--max-upload-mb", "0.2", "--batch-window-ms", "100")
    server = Server(folder, [exported_model, strict_model], *options)
    yield server
    server.stop()


def r2l_predict(model: Path, paths: list[Path], env: dict) -> pd.DataFrame:
    """``r2l predict``'s CSV for ``paths``, from a process like the server's (torch unimportable)."""
    run = subprocess.run([*R2L, "predict", str(model), *map(str, paths)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return pd.read_csv(StringIO(run.stdout))


def answers(response: httpx.Response) -> list[dict]:
    """Per file: label → (probability, decision)."""
    assert response.status_code == 200, response.text
    return [{k: (v["probability"], v["decision"]) for k, v in r["labels"].items()} for r in response.json()["results"]]


def test_predictions_equal_r2l_predict(server, exported_model, images):
    expected = r2l_predict(exported_model, images, server.env)
    response = post(f"{server.url}/v1/models/model/predict", images)
    body = response.json()
    assert body["model"] == "model" and [r["file"] for r in body["results"]] == [p.name for p in images]
    assert all(r["error"] is None for r in body["results"])
    assert answers(response) == [
        {"fracture": (row.fracture_probability, row.fracture_decision)} for row in expected.itertuples()
    ]
    threshold = httpx.get(f"{server.url}/v1/models/model").json()["thresholds"][0]
    assert {r["labels"]["fracture"]["threshold"] for r in body["results"]} == {threshold}
    assert post(f"{server.url}/v1/models/model/predict", images[:1]).json() == {**body, "results": body["results"][:1]}


def model_counts(server: Server) -> dict:
    return {m["id"]: m for m in httpx.get(f"{server.url}/healthz").json()["models"]}["model"]


def test_concurrent_requests_share_onnx_runtime_calls(server, exported_model, images):
    """Single-image requests sent together are batched (a 100 ms window) and get r2l predict's answers."""
    expected = r2l_predict(exported_model, images, server.env)
    before = model_counts(server)
    with ThreadPoolExecutor(len(images)) as pool:
        responses = list(pool.map(lambda p: post(f"{server.url}/v1/models/model/predict", [p]), images))
    after = model_counts(server)
    assert after["images"] - before["images"] == len(images)
    assert after["onnx_calls"] - before["onnx_calls"] < len(images), "concurrent requests were not batched"
    for response, row in zip(responses, expected.itertuples(), strict=True):
        ((probability, decision),) = answers(response)[0].values()
        assert probability == pytest.approx(row.fracture_probability, abs=1e-6)
        assert decision == row.fracture_decision


def test_several_models_each_on_its_route(server, images):
    listed = httpx.get(f"{server.url}/v1/model", timeout=10).json()["models"]
    assert [m["id"] for m in listed] == ["model", "strict"]
    model, strict = listed
    assert model["task"] == "ankle-fracture" and model["labels"] == ["fracture"] and strict["thresholds"] == [0.0]
    assert model["input_size"] == 32 and model["preprocessing"]["foreground_range"] == [0.3, 0.7]
    assert model["report2label_version"] and "Not for diagnostic use" in model["notice"]
    strict_answer = post(f"{server.url}/v1/models/strict/predict", images[:2]).json()
    model_answer = post(f"{server.url}/v1/models/model/predict", images[:2]).json()
    assert strict_answer["model"] == "strict"
    for a, b in zip(strict_answer["results"], model_answer["results"], strict=True):
        assert a["labels"]["fracture"]["probability"] == b["labels"]["fracture"]["probability"]
        assert a["labels"]["fracture"]["decision"] == 1 and a["labels"]["fracture"]["threshold"] == 0.0
    ambiguous = post(f"{server.url}/v1/predict", images[:1])
    assert ambiguous.status_code == 400 and "/v1/models/<id>/predict" in ambiguous.json()["detail"]
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    assert {"/v1/models/model/predict", "/v1/models/strict/predict", "/v1/model", "/healthz"} <= set(paths)
    assert "swagger" in httpx.get(f"{server.url}/docs").text.lower()


def test_bad_files_get_4xx_json_and_the_server_keeps_serving(server, images, tmp_path):
    url = f"{server.url}/v1/models/model/predict"
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    no_pixels = write_dicom(tmp_path / "nopixels.dcm", RAMP)
    import pydicom

    dataset = pydicom.dcmread(no_pixels)
    del dataset.PixelData
    dataset.save_as(no_pixels)
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(300_000))
    cases = [
        ([text], 422, "notes.png: unreadable image"),
        ([no_pixels], 422, "nopixels.dcm: unreadable DICOM"),
        ([big], 413, "big.png: larger than the limit of 0.2 MB"),
        (images[:1] * 7, 413, "7 files in one request; at most 6"),
    ]
    for paths, status, message in cases:
        response = post(url, paths)
        assert response.status_code == status and message in str(response.json()["detail"]), response.text
        assert server.healthy()
    assert httpx.post(url, timeout=10).status_code == 422  # no files at all
    assert post(f"{server.url}/v1/models/nope/predict", images[:1]).status_code == 404
    mixed = post(url, [images[0], text]).json()["results"]
    assert mixed[0]["error"] is None and mixed[0]["labels"]["fracture"]["probability"] > 0
    assert mixed[1]["labels"] is None and "notes.png: unreadable image" in mixed[1]["error"]
    assert server.kept([*images, text, no_pixels, big]) == [], "uploads must not stay on disk"


def test_declared_body_over_the_limits_is_refused_unread(server):
    """A request announcing 10 MB (limits: 6 files of 0.2 MB) is answered 413 without sending the body."""
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {10 * 2**20}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(head.encode())
        answer = b""
        while b"exceeds the limits" not in answer and (chunk := connection.recv(65536)):
            answer += chunk  # headers and body may arrive in separate packets
    assert answer.startswith(b"HTTP/1.1 413") and b"exceeds the limits" in answer
    assert server.healthy()


def test_network_warning_and_model_errors(r2l, exported_model, tmp_path):
    missing = r2l("serve", tmp_path / "missing.onnx", "--host", "0.0.0.0")
    assert missing.exit_code == 1
    assert "images (patient data) will be accepted from the network" in missing.output
    assert "missing.onnx: no such model file" in missing.output
    (tmp_path / "b").mkdir()
    twin = tmp_path / "b" / "model.onnx"
    twin.write_bytes(exported_model.read_bytes())
    clash = r2l("serve", exported_model, twin)
    assert clash.exit_code == 1 and "two models with the id 'model'" in clash.output
    assert "patient data" not in clash.output, "no warning on 127.0.0.1"
