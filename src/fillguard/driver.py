"""The one loop that runs every monitor: a timer heap, a work queue and a small I/O pool.

Nothing here decides anything: the :class:`Driver` calls a machine's inputs on its loop, keeps
its timer (``wake_at``) in a heap, and runs blocking broker calls in a bounded thread pool whose
answers come back through the queue. All machine and tracker state is touched on the loop only.

Two ways to run it:

* **threaded** (the real clock): one background thread owns the loop; callers wait on futures,
  so any number of threads (or asyncio tasks) may wait at once and none is held per order;
* **inline** (a fake clock, in tests): whoever waits runs the loop, I/O runs in place, and when
  nothing is ready the loop jumps the fake clock straight to the next timer of the heap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from fillguard.clock import Clock, SystemClock

__all__ = ["Driver"]

_logger = logging.getLogger("fillguard.driver")
T = TypeVar("T")
#: How long an idle threaded loop waits for work before it checks again.
_IDLE_SECONDS = 1.0


class Driver:
    """A loop with timers and a queue; ``inline`` when the clock is not the system clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        inline: bool | None = None,
        workers: int = 8,
        name: str = "fillguard-driver",
    ) -> None:
        self.clock = clock
        self.inline = not isinstance(clock, SystemClock) if inline is None else inline
        self.name = name
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._queue: deque[Callable[[], None]] = deque()
        self._queue_lock = threading.Lock()
        self._wake = threading.Event()
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._seq = itertools.count()
        self._loop_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._stopping = False
        self.steps = 0
        self._idle_steps = 0

    # ------------------------------------------------------------------ from any thread
    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop (thread-safe)."""
        with self._queue_lock:
            self._queue.append(fn)
        self._wake.set()
        if not self.inline:
            self._ensure_thread()

    def wait(self, future: Future[T], timeout: float | None = None) -> T:
        """The future's result, running the loop meanwhile when inline."""
        if not self.inline:
            self._ensure_thread()
            return future.result(timeout)
        while not future.done():
            with self._loop_lock:
                if not future.done():
                    self._step()
        return future.result()

    def stop(self) -> None:
        """Stop the loop thread and the pool (tests; the process-wide driver runs for good)."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ on the loop
    def call_at(self, when: float, fn: Callable[[float], None]) -> None:
        """Run ``fn(now)`` on the loop at ``when`` (a ``clock.monotonic()`` time)."""
        heapq.heappush(self._timers, (when, next(self._seq), fn))

    def run_io(
        self,
        fn: Callable[[], T],
        done: Callable[[T | None, BaseException | None], None],
    ) -> None:
        """Run the blocking ``fn`` off the loop; ``done(result, error)`` then runs on the loop."""
        if self.inline:
            try:
                value: Any = fn()
            except BaseException as exc:  # handed to done(), which decides
                error: BaseException | None = exc
                value = None
            else:
                error = None
            self._push(lambda: done(value, error))
            return
        pool = self._ensure_pool()

        def finished(fut: Future[T]) -> None:
            exc = fut.exception()
            result = None if exc is not None else fut.result()
            self.call_soon(lambda: done(result, exc))

        pool.submit(fn).add_done_callback(finished)

    # ------------------------------------------------------------------ the loop
    def _push(self, fn: Callable[[], None]) -> None:
        with self._queue_lock:
            self._queue.append(fn)
        self._wake.set()

    def _step(self) -> None:
        """Run what is queued and what is due; if nothing was, wait for the next of either."""
        self.steps += 1
        self._wake.clear()
        ran = self._drain()
        now = self.clock.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _when, _seq, fn = heapq.heappop(self._timers)
            self._safely(lambda fn=fn, now=now: fn(now))  # type: ignore[misc]
            ran = True
        ran = self._drain() or ran
        if ran:
            self._idle_steps = 0
            return
        timeout = _IDLE_SECONDS
        if self._timers:
            timeout = max(0.0, self._timers[0][0] - self.clock.monotonic())
        elif self.inline:
            # Nothing queued, nothing timed, yet a caller waits: only another thread (a
            # stream) can still make progress; wait for it rather than spin.
            self._idle_steps += 1
        self.clock.wait(self._wake, timeout)

    def _drain(self) -> bool:
        ran = False
        while True:
            with self._queue_lock:
                if not self._queue:
                    return ran
                fn = self._queue.popleft()
            self._safely(fn)
            ran = True

    def _safely(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # one bad callback must not stop every monitor
            _logger.exception("driver callback failed")

    def _run_forever(self) -> None:
        while not self._stopping:
            with self._loop_lock:
                self._step()

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run_forever, name=self.name, daemon=True
                )
                self._thread.start()

    def _ensure_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix=f"{self.name}-io")
        return self._pool
