"""The training backends: ``cpu`` and ``cuda`` (bf16 autocast, channels_last, pinned memory, workers)."""

from dataclasses import replace

from report2label.core.hookspecs import hookimpl
from report2label.core.training.trainer import Trainer

CPU = Trainer(name="cpu", device_type="cpu", ddp_backend="gloo", description="float32 on the CPU; DDP over gloo.")
CUDA = Trainer(
    name="cuda",
    device_type="cuda",
    ddp_backend="nccl",
    autocast_dtype="bfloat16",
    channels_last=True,
    pin_memory=True,
    num_workers=4,
    description="bf16 autocast, channels_last, pinned memory, 4 workers; DDP over NCCL.",
)
CUDA_COMPILE = replace(CUDA, name="cuda-compile", compile=True, description="as cuda, with torch.compile.")


@hookimpl
def register_trainers(register) -> None:
    for trainer in (CPU, CUDA, CUDA_COMPILE):
        register(trainer)
