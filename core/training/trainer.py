"""What a training backend decides: device, precision, memory layout, loading and distribution."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trainer:
    """A training backend, registered by plugins with ``register(trainer)``."""

    name: str
    device_type: str
    ddp_backend: str
    autocast_dtype: str | None = None
    channels_last: bool = False
    pin_memory: bool = False
    num_workers: int = 0
    compile: bool = False
    description: str = ""
