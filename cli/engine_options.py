"""``r2l label --engine``: where the labelling runs, and the options of the ``ray`` engine."""

from __future__ import annotations

import functools
from collections.abc import Callable

import click

OPTIONS = (
    click.option(
        "--engine",
        default="local",
        show_default=True,
        help="Where to label: local (this process) or ray (Ray actors; results as Parquet parts).",
    ),
    click.option("--actors", type=click.IntRange(1), help="--engine ray: actors (default: as the CPUs/GPUs allow)."),
    click.option("--cpus-per-actor", type=click.FloatRange(0, min_open=True), help="--engine ray: CPUs per actor (1)."),
    click.option("--gpus-per-actor", type=click.FloatRange(0), help="--engine ray: GPUs per actor (0)."),
    click.option("--address", help="--engine ray: a running Ray cluster (default: a local Ray for this run)."),
)


def engine_options(command: Callable) -> Callable:
    """Add ``--engine`` and the engine options; ``command`` gets ``engine=(name, {option: value given})``."""

    @functools.wraps(command)
    def wrapper(*args, engine, actors, cpus_per_actor, gpus_per_actor, address, **kwargs):
        given = {"actors": actors, "cpus_per_actor": cpus_per_actor, "gpus_per_actor": gpus_per_actor}
        given["address"] = address
        return command(*args, engine=(engine, {k: v for k, v in given.items() if v is not None}), **kwargs)

    for option in reversed(OPTIONS):
        wrapper = option(wrapper)
    return wrapper
