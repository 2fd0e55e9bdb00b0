"""Submitting one trade as a small state machine without I/O (in the manner of h11).

:class:`Submission` decides; a shell (:func:`fillguard.submitter.run_submission`) does the
requests. The shell asks :meth:`Submission.next_action` what to do (POST, look the order up by
``client_order_id``, wait, or finish), does it, and reports what the broker said as one of the
answer values below. The rules that keep one trade one order, and keep "not placed" honest:

* every POST carries the same ``client_order_id``, so the broker itself refuses a second order;
* after an ambiguous attempt (timeout, reset, 5xx, a 2xx that cannot be read) the order is
  looked up first, and sent again only when a whole round of spaced look-ups says 404;
* a refused resubmit, a failed look-up or a 404 after an ambiguous attempt never means
  "not placed"; a duplicate-id refusal is proof the order exists;
* an order found under our ``client_order_id`` must be this trade: a different one is
  ``REFUSED`` naming ``client_order_id`` and is never booked as ours;
* ``NOT_PLACED`` only when nothing was sent, or every attempt was surely not applied (429,
  connect failure) or cleanly refused; giving up after an ambiguous attempt is ``UNKNOWN``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fillguard.intent import OrderIntent
from fillguard.outcome import TradeOutcome
from fillguard.results import Refusal
from fillguard.snapshot import OrderSnapshot

__all__ = [
    "Accepted",
    "Action",
    "Ambiguous",
    "Broken",
    "Done",
    "Found",
    "LookUp",
    "LookupAnswer",
    "LookupFailed",
    "NotApplied",
    "NotFound",
    "NotSent",
    "Post",
    "PostAnswer",
    "Refused",
    "Submission",
    "SubmitResult",
    "Wait",
]


# --------------------------------------------------------------------------- actions
@dataclass(frozen=True, slots=True)
class Post:
    """Send POST /v2/orders now (``attempt`` counts from 1)."""

    attempt: int


@dataclass(frozen=True, slots=True)
class LookUp:
    """GET the order by ``client_order_id`` now (``number`` counts every look-up)."""

    number: int


@dataclass(frozen=True, slots=True)
class Wait:
    """Nothing to do before ``until`` (a monotonic time); then ask again."""

    until: float


@dataclass(frozen=True, slots=True)
class Done:
    """The submission is over."""

    result: SubmitResult


Action = Post | LookUp | Wait | Done


# --------------------------------------------------------------------------- answers
@dataclass(frozen=True, slots=True)
class Accepted:
    """The POST was answered 2xx with this order."""

    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class Refused:
    """The POST was refused (4xx); ``duplicate`` when it says the id is taken."""

    refusal: Refusal
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class NotApplied:
    """The POST surely did not apply (429, connect failure); retry after ``wait_seconds``."""

    reason: str
    wait_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """The POST may have applied (read timeout, reset, 5xx, an unreadable 2xx)."""

    reason: str


@dataclass(frozen=True, slots=True)
class NotSent:
    """The POST failed in this process before any byte left (a bad header value or URL)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Broken:
    """The POST failed in this process and it is not known whether it was sent."""

    reason: str


PostAnswer = Accepted | Refused | NotApplied | Ambiguous | NotSent | Broken


@dataclass(frozen=True, slots=True)
class Found:
    """The look-up found this order."""

    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class NotFound:
    """The look-up answered 404."""


@dataclass(frozen=True, slots=True)
class LookupFailed:
    """The look-up said nothing (transport, 5xx, 401/403, garbage); ``refusal`` if refused."""

    reason: str
    refusal: Refusal | None = None


LookupAnswer = Found | NotFound | LookupFailed


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, slots=True)
class SubmitResult:
    """How the submission ended. ``order`` is set for PLACED (and the conflicting order)."""

    outcome: TradeOutcome
    order: OrderSnapshot | None
    reason: str
    posts: int
    lookups: int
    refusal: Refusal | None = None
    #: Some attempt may have been applied (so "not placed" could not be claimed).
    ambiguous: bool = False


# --------------------------------------------------------------------------- the machine
@dataclass(slots=True)
class Submission:
    """The submission of ``intent``, within ``deadline`` (a monotonic time).

    ``max_posts`` bounds POSTs; ``lookups_per_round`` look-ups ``lookup_spacing_seconds``
    apart must all say 404 before the same id is sent again.
    """

    intent: OrderIntent
    deadline: float
    max_posts: int = 3
    lookups_per_round: int = 3
    lookup_spacing_seconds: float = 0.5
    posts: int = 0
    lookups: int = 0
    ambiguous: bool = False
    exists: bool = False
    can_post: bool = True
    phase: Literal["post", "lookup", "done"] = "post"
    next_at: float = float("-inf")
    round_done: int = 0
    round_not_found: int = 0
    last_refusal: Refusal | None = None
    history: list[str] = field(default_factory=list)
    result: SubmitResult | None = None

    # ------------------------------------------------------------------ asking
    def next_action(self, now: float) -> Action:
        """What to do at ``now``."""
        if self.result is not None:
            return Done(self.result)
        if now >= self.deadline:
            self._give_up("the submit budget ran out")
            assert self.result is not None
            return Done(self.result)
        if now < self.next_at:
            return Wait(min(self.next_at, self.deadline))
        if self.phase == "post":
            return Post(self.posts + 1)
        return LookUp(self.lookups + 1)

    # ------------------------------------------------------------------ POST answers
    def post_answered(self, answer: PostAnswer, now: float) -> None:
        """Take the answer to the POST asked for by the last :class:`Post`."""
        self.posts += 1
        if isinstance(answer, Accepted):
            if answer.order.order_id is None:
                self._note("the POST answer carried no order id")
                self._ambiguous_then_look(now)
                return
            match = self.intent.compare(answer.order)
            if match.verdict == "different":
                self._conflict(answer.order, match.fields)
            else:
                self._finish(TradeOutcome.PLACED, answer.order, "placed")
        elif isinstance(answer, Refused):
            self.last_refusal = answer.refusal
            if answer.duplicate:
                self.exists = True
                self.can_post = False
                self._note(
                    f"the broker says the client_order_id is taken: {answer.refusal.message}"
                )
                self._start_round(now)
            elif not self._may_exist:
                status = answer.refusal.status_code
                self._finish(
                    TradeOutcome.REFUSED,
                    None,
                    f"refused by the broker: {answer.refusal.message}"
                    + (f" (HTTP {status})" if status else ""),
                    refusal=answer.refusal,
                )
            else:
                # An earlier attempt may have placed it (a live order can hold the funds
                # that make this resubmit fail): find out, never resend.
                self.can_post = False
                self._note(f"a resubmit was refused: {answer.refusal.message}")
                self._start_round(now)
        elif isinstance(answer, NotApplied):
            self._note(f"not applied: {answer.reason}")
            if self.posts < self.max_posts:
                self.phase = "post"
                self.next_at = now + max(0.0, answer.wait_seconds)
            else:
                self._give_up(f"{self.posts} attempts were not applied (last: {answer.reason})")
        elif isinstance(answer, Ambiguous):
            self._note(f"ambiguous: {answer.reason}")
            self._ambiguous_then_look(now)
        elif isinstance(answer, NotSent):
            self._note(f"not sent: {answer.reason}")
            self.can_post = False
            if self._may_exist:
                self._start_round(now)
            else:
                self._finish(TradeOutcome.NOT_PLACED, None, f"nothing was sent: {answer.reason}")
        else:  # Broken: it may or may not have left the process
            self._note(f"failed in this process: {answer.reason}")
            self.can_post = False
            self._ambiguous_then_look(now)

    # ------------------------------------------------------------------ look-up answers
    def lookup_answered(self, answer: LookupAnswer, now: float) -> None:
        """Take the answer to the look-up asked for by the last :class:`LookUp`."""
        self.lookups += 1
        self.round_done += 1
        if isinstance(answer, Found):
            match = self.intent.compare(answer.order)
            if answer.order.order_id is not None and match.verdict == "same":
                self._finish(TradeOutcome.PLACED, answer.order, "found by client_order_id")
                return
            if answer.order.order_id is not None and match.verdict == "different":
                self._conflict(answer.order, match.fields)
                return
            self._note(f"look-up {self.lookups}: an unreadable order ({', '.join(match.fields)})")
        elif isinstance(answer, NotFound):
            self.round_not_found += 1
            self._note(f"look-up {self.lookups}: not found")
        else:
            self._note(f"look-up {self.lookups} failed: {answer.reason}")
        if self.round_done < self.lookups_per_round:
            self.next_at = now + self.lookup_spacing_seconds
            return
        confirmed_absent = self.round_not_found == self.round_done
        if confirmed_absent and not self.exists and self.can_post and self.posts < self.max_posts:
            self._note("confirmed not placed by a round of look-ups: sending the same id again")
            self.phase = "post"
            self.next_at = now
            return
        # Not proven either way: keep looking (spaced) until the budget ends.
        self._start_round(now + self.lookup_spacing_seconds)

    # ------------------------------------------------------------------ helpers
    @property
    def _may_exist(self) -> bool:
        return self.ambiguous or self.exists

    def _ambiguous_then_look(self, now: float) -> None:
        self.ambiguous = True
        self._start_round(now)

    def _start_round(self, at: float) -> None:
        self.phase = "lookup"
        self.round_done = 0
        self.round_not_found = 0
        self.next_at = at

    def _note(self, text: str) -> None:
        self.history.append(text)

    def _conflict(self, order: OrderSnapshot, fields: tuple[str, ...]) -> None:
        coid = self.intent.client_order_id
        refusal = Refusal(
            None,
            None,
            f"client_order_id {coid} is already used by a different order "
            f"({order.order_id}; differs in {', '.join(fields)})",
        )
        self._finish(TradeOutcome.REFUSED, order, refusal.message, refusal=refusal)

    def _give_up(self, why: str) -> None:
        if self._may_exist:
            self._finish(
                TradeOutcome.UNKNOWN,
                None,
                f"outcome unknown: {why}; the order may exist (it stays tracked)",
                refusal=self.last_refusal,
            )
        else:
            self._finish(TradeOutcome.NOT_PLACED, None, f"not placed: {why}")

    def _finish(
        self,
        outcome: TradeOutcome,
        order: OrderSnapshot | None,
        reason: str,
        *,
        refusal: Refusal | None = None,
    ) -> None:
        self.phase = "done"
        self._note(reason)
        self.result = SubmitResult(
            outcome=outcome,
            order=order,
            reason=reason,
            posts=self.posts,
            lookups=self.lookups,
            refusal=refusal,
            ambiguous=self._may_exist,
        )
