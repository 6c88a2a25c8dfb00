"""Micro-batching: images of concurrent requests go to ONNX Runtime in one call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np


class MicroBatcher:
    """Run ``run`` on the images of every request that arrives within ``window_s`` of the first.

    Images already waiting are taken at once; then the batcher waits up to ``window_s`` for more, up
    to ``max_batch`` images. One call runs at a time, on a thread of its own, so the event loop keeps
    accepting requests while ONNX Runtime computes (with all its intra-op threads).
    """

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], window_s: float, max_batch: int) -> None:
        self.run, self.window_s, self.max_batch = run, window_s, max_batch
        self.calls = self.images = 0  # ONNX Runtime calls made, images they predicted
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnxruntime")

    async def submit(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for ``images`` [N, H, W], computed together with those of other requests."""
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._serve())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((images, future))
        return await future

    async def _collect(self) -> list[tuple[np.ndarray, asyncio.Future]]:
        items = [await self._queue.get()]
        size = len(items[0][0])
        deadline = asyncio.get_running_loop().time() + self.window_s
        while size < self.max_batch:
            try:
                if self._queue.empty():
                    remaining = deadline - asyncio.get_running_loop().time()
                    if remaining <= 0:
                        break
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                else:
                    item = self._queue.get_nowait()
            except TimeoutError:
                break
            items.append(item)
            size += len(item[0])
        return items

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            try:
                probs = await loop.run_in_executor(self._executor, self.run, np.concatenate([i for i, _ in items]))
            except Exception as exc:  # a failed call fails its requests, not the batcher
                for _, future in items:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.calls += 1
            self.images += len(probs)
            start = 0
            for images, future in items:
                if not future.done():
                    future.set_result(probs[start : start + len(images)])
                start += len(images)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False)
