"""r2l train across two "nodes" under torchrun: c10d rendezvous on 127.0.0.1, gloo on the CPU.

Each node is its own torchrun process (``--nnodes 2 --nproc-per-node 1``), as on two machines that
share the data-set and run folders.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import torch
from conftest import free_port

FAST = ["--image-size", "32", "--batch-size", "8", "--no-progress"]


def start_nodes(dataset, rundir, *extra: str) -> list[subprocess.Popen]:
    """Two torchrun agents, one per "node", meeting at a c10d rendezvous on 127.0.0.1."""
    endpoint = f"127.0.0.1:{free_port()}"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    nodes = []
    for node in range(2):
        command = [
            *(sys.executable, "-m", "torch.distributed.run"),
            *("--nnodes", "2", "--nproc-per-node", "1", "--node-rank", str(node)),
            *("--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "r2l-test"),
            *("--rdzv-conf", f"is_host={'true' if node == 0 else 'false'}", "--max-restarts", "0"),
            *("-m", "report2label.cli", "-v", "train", "ankle-fracture", str(dataset), "-o", str(rundir)),
            *FAST,
            *extra,
        ]
        nodes.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    return nodes


def lose(node: subprocess.Popen) -> None:
    """SIGKILL a node: its torchrun agent and the training process it started."""
    agent = psutil.Process(node.pid)
    for process in [*agent.children(recursive=True), agent]:
        process.send_signal(signal.SIGKILL)


def finish(nodes: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each node."""
    outputs = [node.communicate(timeout=300) for node in nodes]
    return [(node.returncode, *output) for node, output in zip(nodes, outputs, strict=True)]


def final_sha256(stderr: str) -> dict[int, str]:
    """Rank → the final weights' SHA-256 that rank logged (``-v``)."""
    return {int(r): h for r, h in re.findall(r"rank (\d+) of 2: final weights sha256 ([0-9a-f]{64})", stderr)}


def parameters_sha256(checkpoint) -> str:
    """The SHA-256 of a checkpoint's parameters (batch-norm statistics left out), as the loop computes it."""
    weights = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    digest = hashlib.sha256()
    for name, tensor in weights.items():
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def test_two_nodes_train_identical_weights_and_resume_after_a_node_is_lost(dataset, tmp_path):
    rundir = tmp_path / "run"
    # A node is lost during the first epoch's work after last.pt exists: the other stops with an error.
    nodes = start_nodes(dataset, rundir, "--epochs", "2")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (rundir / "last.pt").exists() and nodes[1].poll() is None:
        time.sleep(0.1)
    assert (rundir / "last.pt").exists(), nodes[1].communicate()[1][-3000:]
    lose(nodes[1])
    outcome = finish(nodes)
    assert outcome[0][0] != 0, "the remaining node must stop, not hang or finish alone"
    done = len(pd.read_csv(rundir / "history.csv"))
    assert done < 2
    # Both nodes again with --resume: rank 0's checkpoint on the shared run folder is the starting point.
    nodes = start_nodes(dataset, rundir, "--epochs", "2", "--resume")
    (code0, out0, err0), (code1, _, err1) = finish(nodes)
    assert code0 == 0 and code1 == 0, (err0[-3000:], err1[-3000:])
    assert f"trained {2 - done} epochs (resumed after epoch {done})" in out0
    assert "2 processes agree on the final weights" in out0
    hashes = final_sha256(err0) | final_sha256(err1)
    assert set(hashes) == {0, 1} and hashes[0] == hashes[1]
    assert parameters_sha256(rundir / "last.pt") == hashes[1]  # rank 0 saved the weights rank 1 ended with
    assert len(pd.read_csv(rundir / "history.csv")) == 2
