"""Async step handlers: ``async def process`` runs on an event loop the app owns.

Each app has one :class:`EventLoop`: a single asyncio loop in a daemon thread, started when the first
async handler runs and stopped by ``app.shutdown()``. A step thread hands the coroutine to that loop
and waits for it; the coroutine runs in a copy of the step thread's context (so spans it starts are
children of the step's span). A step timeout cancels the coroutine (``asyncio.timeout``): its
``finally`` blocks and ``async with`` exits run, and the attempt fails with
:class:`~tasker.errors.StepTimeoutError` (retryable).
Async handlers share the loop: code that blocks it (``time.sleep``, sync I/O) stalls them all.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from tasker.errors import StepTimeoutError

__all__ = ["EventLoop", "run_awaitable", "run_blocking"]

T = TypeVar("T")


async def run_awaitable(awaitable: Awaitable[T], timeout: float | None, step: str = "?") -> T:
    """Await ``awaitable``; after ``timeout`` seconds (None: no limit) cancel it, raising ``StepTimeoutError``."""
    if timeout is None:
        return await awaitable
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if scope.expired():
            raise StepTimeoutError(step, timeout) from None
        raise


class EventLoop:
    """One app's event loop for async handlers, in a thread of its own (see the module docstring)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, awaitable: Awaitable[T], timeout: float | None = None, step: str = "?") -> T:
        """Run ``awaitable`` on the loop (within ``timeout``) and return its result, from any other thread."""
        future = asyncio.run_coroutine_threadsafe(run_awaitable(awaitable, timeout, step), self._started())
        return future.result()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="tasker-async-handlers", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def close(self) -> None:
        """Stop the loop (after cancelling what still runs on it) and its thread; a later run starts anew."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def _cancel_all() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def run_blocking(awaitable: Awaitable[Any], loop: EventLoop | None, timeout: float | None, step: str) -> Any:
    """Run ``awaitable`` for ``step`` on ``loop``, or (a handler used outside the engine) on a loop of its own.

    Outside the engine, when this thread already runs an event loop (a notebook, an async framework), the
    private loop runs in a helper thread, with this thread's context.
    """
    if loop is not None:
        return loop.run(awaitable, timeout, step)
    coroutine = run_awaitable(awaitable, timeout, step)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tasker-async-handler") as helper:
        return helper.submit(contextvars.copy_context().run, asyncio.run, coroutine).result()
