"""The order tracker: every order fillguard watches, one per account per process.

It holds a :class:`~fillguard.lifecycle.OrderView` per order (by id and by client order id),
merges into it everything that is learned (trade_updates events as they come, REST reads and
sweeps), and runs every :class:`~fillguard.monitor.MonitorMachine` on one
:class:`~fillguard.driver.Driver`. REST is the truth where the stream is silent:

* a machine asks for a read when it has heard nothing for a while (``stream_silence_seconds``
  with a live stream, its adaptive poll schedule without one), at its deadline, and after a
  cancel; reads asked within ``sweep_batch_seconds`` of each other are served together by one
  **sweep** (``GET /v2/orders?status=all&after=...&direction=asc&limit=500``, paged), and an
  order is read by id only when a sweep cannot cover it;
* every (re)connect of the stream (a gap) sweeps every order watched since before the gap;
* views of finished orders stay for ``retention_seconds`` so that a late event still lands.

The latest ``position_qty`` of each symbol's execution events is kept for position checks.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fillguard.broker import BrokerClient
from fillguard.clock import Clock
from fillguard.driver import Driver
from fillguard.errors import BrokerError, RefusedError
from fillguard.gateway import OrderGateway
from fillguard.lifecycle import Observation, OrderView, merge, view_of
from fillguard.logs import log_context, log_event
from fillguard.monitor import Action, Cancel, FetchPrice, Finish, Follow, MonitorMachine, Read
from fillguard.observer import NULL_OBSERVER, Observer
from fillguard.results import FillResult, Refusal
from fillguard.retry import ErrorRecoveryManager
from fillguard.snapshot import OrderSnapshot
from fillguard.sweep import connect_stream, fetch_sweep, sweep_start

__all__ = ["OrderTracker", "TrackerSettings"]

_logger = logging.getLogger("fillguard.tracker")
_PAGE = 500


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """How the tracker batches reads and how long it remembers."""

    sweep_batch_seconds: float = 0.02
    sweep_overlap_seconds: float = 2.0
    max_sweep_pages: int = 4
    retention_seconds: float = 120.0
    io_workers: int = 8
    #: With nothing watched for this long, the stream connection is given back.
    stream_idle_seconds: float = 30.0


@dataclass(slots=True)
class _Watch:
    machine: MonitorMachine
    gateway: OrderGateway
    future: Future[FillResult]


class OrderTracker:
    """Views, sweeps and the driver of one account."""

    def __init__(
        self,
        *,
        clock: Clock,
        sweeper: BrokerClient | None = None,
        recovery: ErrorRecoveryManager | None = None,
        settings: TrackerSettings | None = None,
        observer: Observer = NULL_OBSERVER,
        logger: logging.Logger | None = None,
    ) -> None:
        self.clock = clock
        self.settings = settings or TrackerSettings()
        self.driver = Driver(clock, workers=self.settings.io_workers)
        self.sweeper = sweeper
        self.recovery = recovery
        self.observer = observer
        self._logger = logger or _logger
        self.views: dict[str, OrderView] = {}
        self.by_client_id: dict[str, str] = {}
        self._watches: dict[int, _Watch] = {}
        self._by_order: dict[str, set[int]] = {}
        self._pending: dict[str, list[tuple[int, Read]]] = {}
        self._flush_at: float | None = None
        self._positions: dict[str, tuple[Any, Decimal]] = {}
        self._finished_at: dict[str, float] = {}
        self.stream_live = False
        self._ids = iter(range(1, 1 << 62))
        self.sweeps = 0
        self.reads_by_id = 0
        self.gaps = 0
        self.gaps_repaired = 0
        self.events = 0
        self.stream: Any = None
        self._stream_lock = threading.Lock()
        self._credentials: tuple[str, str, str] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._idle_since: float | None = None

    # ------------------------------------------------------------------ the stream
    def use_stream(self, key_id: str, secret_key: str, base_url: str) -> None:
        """Listen to the account's trade_updates while orders are watched (one shared
        connection, opened with the first monitor and released when idle)."""
        with self._stream_lock:
            if self._credentials is None:
                self._credentials = (key_id, secret_key, base_url)

    def _connect_stream(self) -> None:
        """Open (or share) the account's stream; on the loop, when a monitor starts."""
        with self._stream_lock:
            if self.stream is not None or self._credentials is None:
                return
            stream, self._unsubscribe = connect_stream(self, *self._credentials)
            self.stream = stream
            live = stream.listening
        if live:
            self._on_state(True)

    def release_stream(self) -> None:
        """Stop listening (the connection closes when no other tracker shares it)."""
        with self._stream_lock:
            stream, self.stream = self.stream, None
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        if stream is not None:
            stream.release()
        self.driver.call_soon(lambda: self._on_state(False))

    def _release_if_idle_at(self, since: float, _now: float) -> None:
        if not self._watches and self._idle_since == since:
            self.release_stream()

    def shutdown(self) -> None:
        """Release the stream and stop the loop thread (tests; a process normally keeps it)."""
        self.release_stream()
        self.driver.stop()

    # ------------------------------------------------------------------ public
    def submit(self, machine: MonitorMachine, gateway: OrderGateway) -> Future[FillResult]:
        """Start monitoring with ``machine``; ``gateway`` does its per-order requests."""
        future: Future[FillResult] = Future()
        watch = _Watch(machine, gateway, future)
        self.driver.call_soon(lambda: self._start(watch))
        return future

    def wait(self, future: Future[FillResult]) -> FillResult:
        """Block until ``future`` has its result (running the loop when inline)."""
        return self.driver.wait(future)

    def poke(self, order_id: str) -> None:
        """Read ``order_id`` soon (something may have happened)."""
        self.driver.call_soon(lambda: self._poke(order_id))

    def on_stream_event(self, observation: Observation) -> None:
        """A trade_updates event (from the stream's thread)."""
        self.driver.call_soon(lambda: self._on_event(observation))

    def on_stream_state(self, live: bool) -> None:
        """The stream started or stopped listening (from the stream's thread)."""
        self.driver.call_soon(lambda: self._on_state(live))

    def on_gap(self, since_wall: Any) -> None:
        """The stream may have missed events since ``since_wall`` (from the stream's thread)."""
        self.driver.call_soon(lambda: self._on_gap(since_wall))

    def position_qty(self, symbol: str) -> tuple[Any, Decimal] | None:
        """The newest execution event's (time, position_qty) for ``symbol``, if any (thread-safe
        enough: a tuple is replaced whole)."""
        return self._positions.get(symbol)

    def watched(self) -> int:
        """How many monitors are running."""
        return len(self._watches)

    def is_watching(self, order_id: str) -> bool:
        """Whether a monitor runs for ``order_id`` (its trade books it when it ends)."""
        return bool(self._by_order.get(order_id))

    # ------------------------------------------------------------------ loop: machines
    def _start(self, watch: _Watch) -> None:
        if watch.machine.uses_stream and self._credentials is not None and self.stream is None:
            self._connect_stream()
        self._idle_since = None
        wid = next(self._ids)
        self._watches[wid] = watch
        order_id = watch.machine.order_id
        self._by_order.setdefault(order_id, set()).add(wid)
        watch.machine.stream_live = self.stream_live and watch.machine.uses_stream
        self.observer.tracked_orders(len(self._watches))
        now = self.clock.monotonic()
        view = self.views.get(order_id)
        coid = watch.machine.mon.client_order_id

        def begin(machine: MonitorMachine) -> list[Action]:
            actions = machine.start(now)
            if (
                view is not None
                and view.snapshot.status is not None
                and not machine.done
                and machine.uses_stream
                and coid is not None
                and view.snapshot.client_order_id == coid
            ):
                # Events that arrived before the order was watched (e.g. before the POST
                # answer); only when surely this order's: an id can be reused after a reset.
                actions += machine.on_view(view, now, changed=True, source="stream")
            return actions

        self._feed(wid, begin)

    def _feed(self, wid: int, call: Callable[[MonitorMachine], list[Action]]) -> None:
        """Give the machine an input and carry out what it answers, in its trade's log context."""
        watch = self._watches.get(wid)
        if watch is None:
            return
        # The driver's thread logs for many trades: tag each record with its own.
        with log_context(client_order_id=watch.machine.mon.client_order_id):
            self._apply_actions(wid, watch, call(watch.machine))

    def _apply(self, wid: int, actions: list[Action]) -> None:
        watch = self._watches.get(wid)
        if watch is None:
            return
        with log_context(client_order_id=watch.machine.mon.client_order_id):
            self._apply_actions(wid, watch, actions)

    def _apply_actions(self, wid: int, watch: _Watch, actions: list[Action]) -> None:
        machine = watch.machine
        for action in actions:
            if isinstance(action, Finish):
                self._finish(wid, action.result)
                return
            if isinstance(action, Read):
                self._request_read(wid, action)
            elif isinstance(action, Cancel):
                self._cancel(wid, action)
            elif isinstance(action, FetchPrice):
                self._price(wid, action)
            elif isinstance(action, Follow):
                self._by_order.get(action.old_id, set()).discard(wid)
                self._by_order.setdefault(action.new_id, set()).add(wid)
                view = self.views.get(action.new_id)
                if view is not None and view.snapshot.status is not None:
                    now = self.clock.monotonic()
                    actions = machine.on_view(view, now, changed=True, source="stream")
                    self._apply_actions(wid, watch, actions)
                    return
        self._schedule(wid)

    def _schedule(self, wid: int) -> None:
        watch = self._watches.get(wid)
        if watch is None:
            return
        when = watch.machine.wake_at
        if when is not None:
            self.driver.call_at(when, functools.partial(self._timer, wid, when))

    def _timer(self, wid: int, when: float, now: float) -> None:
        watch = self._watches.get(wid)
        if watch is None or watch.machine.wake_at != when:
            return  # superseded by a newer timer
        self._feed(wid, lambda m: m.on_timer(now))

    def _finish(self, wid: int, result: FillResult) -> None:
        watch = self._watches.pop(wid)
        for ids in self._by_order.values():
            ids.discard(wid)
        now = self.clock.monotonic()
        self._finished_at[watch.machine.order_id] = now
        self.observer.tracked_orders(len(self._watches))
        self._forget_old(now)
        if not self._watches and self.stream is not None:
            self._idle_since = now
            self.driver.call_at(
                now + self.settings.stream_idle_seconds,
                functools.partial(self._release_if_idle_at, now),
            )
        watch.future.set_result(result)

    def _poke(self, order_id: str) -> None:
        now = self.clock.monotonic()
        for wid in list(self._by_order.get(order_id, ())):
            watch = self._watches.get(wid)
            if watch is not None:
                self._feed(wid, lambda m: m.poke(now))

    # ------------------------------------------------------------------ loop: stream
    def _on_event(self, observation: Observation) -> None:
        self.events += 1
        snap = observation.snapshot
        order_id = snap.order_id
        if order_id is None:
            return
        if snap.client_order_id:
            self.by_client_id[snap.client_order_id] = order_id
        if observation.position_qty is not None and snap.symbol:
            known = self._positions.get(snap.symbol)
            stamp = observation.event_time
            if known is None or stamp is None or known[0] is None or stamp >= known[0]:
                self._positions[snap.symbol] = (stamp, observation.position_qty)
        self._merge_and_feed(order_id, observation, "stream")

    def _on_state(self, live: bool) -> None:
        if live == self.stream_live:
            return
        self.stream_live = live
        now = self.clock.monotonic()
        for wid in list(self._watches):
            self._feed(wid, lambda m: m.on_stream(live, now))

    def _on_gap(self, since_wall: Any) -> None:
        self.gaps += 1
        if not self._watches:
            return
        order_ids = {w.machine.order_id for w in self._watches.values()}
        log_event(self._logger, logging.INFO, "stream_gap", orders=len(order_ids))
        self._sweep_now(order_ids, gap=True)

    # ------------------------------------------------------------------ loop: reads
    def _request_read(self, wid: int, read: Read) -> None:
        self._pending.setdefault(read.order_id, []).append((wid, read))
        if self._flush_at is None:
            # With one order watched there is nothing to batch with: read at once.
            batch = self.settings.sweep_batch_seconds if len(self._watches) > 1 else 0.0
            self._flush_at = self.clock.monotonic() + batch
            self.driver.call_at(self._flush_at, lambda now: self._flush())

    def _flush(self) -> None:
        self._flush_at = None
        pending, self._pending = self._pending, {}
        coverable = {oid for oid in pending if self._sweep_start([oid]) is not None}
        if self.sweeper is not None and len(coverable) >= 2:
            self._sweep_now(coverable, requests=pending)
            pending = {oid: reqs for oid, reqs in pending.items() if oid not in coverable}
        for order_id, requests in pending.items():
            self._read_by_id(order_id, requests)

    def _read_by_id(self, order_id: str, requests: list[tuple[int, Read]]) -> None:
        wid, read = requests[0]
        watch = self._watches.get(wid)
        if watch is None:
            return
        self.reads_by_id += 1
        stats = watch.machine.mon.stats

        def call() -> OrderSnapshot:
            return watch.gateway.read(
                order_id, deadline=read.deadline, stats=stats, grace_until=read.grace_until
            )

        def done(snap: OrderSnapshot | None, error: BaseException | None) -> None:
            if error is not None or snap is None:
                self._read_failed(order_id, requests, error)
            else:
                self._read_answered(order_id, snap, requests)

        self.driver.run_io(call, done)

    def _read_answered(
        self, order_id: str, snap: OrderSnapshot, requests: list[tuple[int, Read]]
    ) -> None:
        now = self.clock.monotonic()
        if snap.is_half_updated:
            log_event(
                self._logger,
                logging.INFO,
                "half_updated_read",
                order_id=order_id,
                status=snap.status,
                filled_qty=snap.filled_qty,
                filled_avg_price=snap.filled_avg_price,
            )
        view, changed = merge(
            self.views.get(order_id) or view_of(order_id), Observation(snap, "rest", now)
        )
        known = self.views.get(order_id) is not None
        stale = not changed and snap.status is not None and not snap.is_half_updated
        if stale and known and snap != view.snapshot:
            log_event(
                self._logger,
                logging.INFO,
                "stale_read_ignored",
                order_id=order_id,
                status=snap.status,
                filled_qty=snap.filled_qty,
            )
        self.views[order_id] = view
        if snap.client_order_id:
            self.by_client_id[snap.client_order_id] = order_id
        asked = {wid for wid, _ in requests}
        for wid in asked:
            watch = self._watches.get(wid)
            if watch is not None:
                self._feed(
                    wid,
                    lambda m: m.on_view(
                        view, now, changed=changed, half_updated=snap.is_half_updated, source="rest"
                    ),
                )
        if changed:
            self._feed_others(order_id, view, now, skip=asked, stream=False)

    def _read_failed(
        self, order_id: str, requests: list[tuple[int, Read]], error: BaseException | None
    ) -> None:
        now = self.clock.monotonic()
        refusal = None
        if isinstance(error, RefusedError):
            refusal = Refusal(error.status_code, error.code, error.message)
        reason = str(error) if error is not None else "no answer"
        if error is not None and not isinstance(error, BrokerError):
            self._logger.error("a read failed inside fillguard: %r", error)
        for wid, _read in requests:
            watch = self._watches.get(wid)
            if watch is not None:
                self._feed(wid, lambda m: m.on_read_failed(refusal, reason, now))

    # ------------------------------------------------------------------ loop: sweeps
    def _sweep_start(self, order_ids: Any) -> Any:
        return sweep_start(self.views, order_ids, self.settings.sweep_overlap_seconds)

    def _sweep_now(
        self,
        order_ids: set[str],
        *,
        requests: dict[str, list[tuple[int, Read]]] | None = None,
        gap: bool = False,
    ) -> None:
        sweeper = self.sweeper
        after = self._sweep_start(order_ids)
        requests = requests or {}
        if sweeper is None or after is None:
            for oid in order_ids:
                self._read_by_id(oid, requests.get(oid) or self._any_request(oid))
            return
        self.sweeps += 1
        deadline = self.clock.monotonic() + 5.0
        # Enough pages to hold every order to cover (a page short of that, and each order it
        # misses is read by id: thousands of reads instead of a few more pages).
        pages = max(self.settings.max_sweep_pages, -(-len(order_ids) // _PAGE) + 1)
        recovery = self.recovery

        def call() -> list[OrderSnapshot]:
            return fetch_sweep(sweeper, recovery, after, pages=pages, deadline=deadline)

        def done(found: list[OrderSnapshot] | None, error: BaseException | None) -> None:
            self.observer.sweep(len(found or []))
            if error is not None or found is None:
                for oid in order_ids:
                    reqs = requests.get(oid)
                    if reqs:
                        self._read_failed(oid, reqs, error)
                return
            seen = set()
            for snap in found:
                if snap.order_id is None:
                    continue
                seen.add(snap.order_id)
                if snap.order_id in self.views or snap.order_id in self._by_order:
                    reqs = requests.get(snap.order_id, [])
                    self._read_answered(snap.order_id, snap, reqs)
            for oid in order_ids - seen:
                reqs = requests.get(oid)
                if reqs:
                    self._read_by_id(oid, reqs)  # not in the sweep: ask for it by id
            if gap:
                self.gaps_repaired += 1
                self.observer.stream_gap_repaired()

        self.driver.run_io(call, done)

    def _any_request(self, order_id: str) -> list[tuple[int, Read]]:
        wids = self._by_order.get(order_id, set())
        out = []
        for wid in wids:
            watch = self._watches.get(wid)
            if watch is not None:
                mon = watch.machine.mon
                out.append((wid, Read(order_id, "gap", mon.grace(), mon.final_deadline)))
                watch.machine.reading = True
        return out

    # ------------------------------------------------------------------ loop: helpers
    def _merge_and_feed(self, order_id: str, observation: Observation, source: str) -> None:
        view, changed = merge(self.views.get(order_id) or view_of(order_id), observation)
        self.views[order_id] = view
        if changed:
            self._feed_others(order_id, view, observation.at, skip=set())

    def _feed_others(
        self, order_id: str, view: OrderView, now: float, *, skip: set[int], stream: bool = True
    ) -> None:
        for wid in list(self._by_order.get(order_id, ())):
            if wid in skip:
                continue
            watch = self._watches.get(wid)
            if watch is not None and (watch.machine.uses_stream or not stream):
                self._feed(wid, lambda m: m.on_view(view, now, changed=True, source="stream"))

    def _cancel(self, wid: int, action: Cancel) -> None:
        watch = self._watches[wid]
        stats = watch.machine.mon.stats

        def done(outcome: Any, error: BaseException | None) -> None:
            from fillguard.gateway import CancelOutcome

            answer = outcome if error is None else CancelOutcome("failed", None, str(error))
            current = self._watches.get(wid)
            if current is not None:
                now = self.clock.monotonic()
                self._feed(wid, lambda m: m.on_cancel(answer, now))

        self.driver.run_io(
            lambda: watch.gateway.cancel(action.order_id, deadline=action.deadline, stats=stats),
            done,
        )

    def _price(self, wid: int, action: FetchPrice) -> None:
        watch = self._watches[wid]
        stats = watch.machine.mon.stats

        def done(price: Decimal | None, error: BaseException | None) -> None:
            current = self._watches.get(wid)
            if current is not None:
                value = None if error is not None else price
                now = self.clock.monotonic()
                self._feed(wid, lambda m: m.on_price(value, now))

        self.driver.run_io(
            lambda: watch.gateway.fill_price_from_activities(
                action.order_id, action.filled_qty, deadline=action.deadline, stats=stats
            ),
            done,
        )

    def _forget_old(self, now: float) -> None:
        horizon = now - self.settings.retention_seconds
        old = [oid for oid, at in self._finished_at.items() if at < horizon]
        for oid in old:
            del self._finished_at[oid]
            if not self._by_order.get(oid):
                view = self.views.pop(oid, None)
                self._by_order.pop(oid, None)
                if view is not None and view.snapshot.client_order_id:
                    self.by_client_id.pop(view.snapshot.client_order_id, None)
