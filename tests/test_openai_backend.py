"""The openai backend: a real llama.cpp server on 127.0.0.1, a stand-in for its slots, the privacy policy."""

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from conftest import R2L, stored_rows, write_reports

from report2label.core import label
from report2label.core.errors import R2LError
from report2label.core.privacy import check_endpoint, is_private_host
from report2label.plugins.ankle_fracture import TASK

pytest.importorskip("openai")
from report2label.plugins.backends.openai_server import OpenAILabeler  # noqa: E402


def test_labels_through_a_real_llama_cpp_server(llama_server, small_example, tmp_path):
    summary = label(
        "ankle-fracture",
        small_example / "reports.csv",
        tmp_path / "out",
        backend="openai",
        options={"base_url": llama_server.url, "concurrency": 4},
        show_progress=False,
    )
    assert (summary.labelled, summary.failed) == (24, 0)
    labels = pd.read_csv(tmp_path / "out" / "labels.csv")
    assert labels["fracture"].isin([0, 1]).all()
    assert labels["model"][0].endswith("tiny-chatml.gguf"), "the server's only model is found by itself"
    # llama.cpp's server rejects the json_schema envelope; auto mode settles on json_object + schema
    assert '"structured": "json_object"' in labels["params"][0]


def test_server_down_mid_run_then_back(llama_server, tmp_path):
    n = 60
    reports = write_reports(tmp_path / "r.csv", [f"Befund {i}: Keine Fraktur. " * 12 for i in range(n)])
    out = tmp_path / "out"
    args = [
        *R2L,
        "label",
        "ankle-fracture",
        str(reports),
        "-o",
        str(out),
        "--backend",
        "openai",
        "-O",
        f"base_url={llama_server.url}",
        "-O",
        "concurrency=1",
        "-O",
        "retries=1",
        "-O",
        "timeout=5",
        "--batch-size",
        "2",
        "--no-progress",
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and stored_rows(out / "labels.sqlite") < 6:
        time.sleep(0.05)
    llama_server.stop()
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 3, stderr  # finished, but some rows failed
    first = pd.read_csv(out / "labels.csv")
    labelled, failed = (first["status"] == "labelled").sum(), (first["status"] == "failed").sum()
    assert labelled >= 6 and failed > 0 and labelled + failed == n
    assert f"{labelled} labelled, {failed} failed" in stdout
    assert "unreachable after 1 retries" in stdout and "rerun the same command" in stdout

    llama_server.start()
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{n} labelled, 0 failed; {labelled} already stored, {failed} asked" in rerun.stdout
    assert (pd.read_csv(out / "labels.csv")["status"] == "labelled").all()


class SlotServer(ThreadingHTTPServer):
    """A stand-in for llama.cpp's server on 127.0.0.1 that says it has ``slots`` parallel slots (GET /props).

    It answers chat requests after the first one in groups of ``slots`` arriving together (a
    barrier) and records the order of request starts and ends and the most requests in flight.
    """

    daemon_threads = True

    def __init__(self, slots: int | None) -> None:
        super().__init__(("127.0.0.1", 0), SlotHandler)
        self.slots, self.events, self.in_flight, self.most = slots, [], 0, 0
        self.lock, self.barrier = threading.Lock(), threading.Barrier(slots or 1, timeout=10)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def chat(self) -> None:
        with self.lock:
            first, n = not self.events, len(self.events)
            self.events.append(("start", n))
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        if not first:
            self.barrier.wait()
        with self.lock:
            self.in_flight -= 1
            self.events.append(("end", n))


class SlotHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/props" and self.server.slots:
            self.reply(200, {"total_slots": self.server.slots})
        elif self.path == "/v1/models":
            self.reply(200, {"object": "list", "data": [{"id": "stub", "object": "model", "owned_by": "me"}]})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.chat()
        message = {"role": "assistant", "content": '{"fracture": 0}'}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        self.reply(200, {"id": "x", "object": "chat.completion", "created": 0, "model": "stub", "choices": [choice]})

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slot_server(request):
    server = SlotServer(request.param)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("slot_server", [3], indirect=True)
def test_requests_fill_the_servers_slots_after_one_alone(slot_server, tmp_path):
    reports = write_reports(tmp_path / "r.csv", [f"Befund {i}: keine Fraktur." for i in range(10)])
    options = {"base_url": slot_server.url, "structured": "json_object", "retries": 0}
    summary = label("ankle-fracture", reports, tmp_path / "out", backend="openai", options=options, show_progress=False)
    assert summary.labelled == 10
    assert slot_server.events[:2] == [("start", 0), ("end", 0)], "the first request, with the shared prefix, goes alone"
    assert slot_server.most == 3, "then as many in flight as the server has slots"


@pytest.mark.parametrize(
    ("slot_server", "option", "expected"), [(4, None, 4), (4, 2, 2), (None, None, 8)], indirect=["slot_server"]
)
def test_concurrency_is_the_option_else_the_servers_slots_else_8(slot_server, option, expected):
    options = OpenAILabeler.Options(base_url=slot_server.url, concurrency=option)
    backend = OpenAILabeler(TASK, TASK.prompt(), options)
    assert backend.concurrency == expected
    backend.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "10.1.2.3", "192.168.0.7", "172.20.1.1", "fd00::1"])
def test_loopback_and_private_addresses_are_allowed(host):
    assert is_private_host(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_not_private(host):
    assert not is_private_host(host)


def test_public_url_is_refused_before_any_report_is_read(r2l, tmp_path):
    result = r2l(
        "label",
        "ankle-fracture",
        tmp_path / "does-not-exist.csv",
        "-o",
        tmp_path / "out",
        "--backend",
        "openai",
        "-O",
        "base_url=https://8.8.8.8/v1",
    )
    assert result.exit_code == 1
    assert "option 'base_url': 8.8.8.8 is not a loopback or private address" in result.output
    assert "--allow-remote" in result.output and "does-not-exist" not in result.output
    assert not (tmp_path / "out").exists()


def test_allow_remote_is_consent_with_a_warning(caplog):
    assert check_endpoint("https://8.8.8.8/v1", allow_remote=True) == "8.8.8.8"
    assert "report texts will be sent to 8.8.8.8" in caplog.text
    with pytest.raises(ValueError, match="not an http"):
        check_endpoint("ftp://127.0.0.1/", allow_remote=True)


def test_unknown_backend_option_is_named(tmp_path):
    with pytest.raises(R2LError, match="backend 'openai': option 'concurency': Extra inputs are not permitted"):
        label("ankle-fracture", tmp_path / "r.csv", tmp_path / "out", backend="openai", options={"concurency": 2})
