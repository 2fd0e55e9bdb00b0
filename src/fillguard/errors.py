"""The fillguard exception tree, named for what we know about the broker's state.

::

    FillguardError
    ├── InvalidInputError (also ValueError)   bad argument or config; nothing was sent
    └── BrokerError                           the broker (or the way to it) failed us
        ├── RefusedError                      surely refused: 401, 403, 404, 422; never retry as is
        ├── TransientError                    surely not applied, or a read worth repeating:
        │                                     connect error, 429, 5xx and timeouts on reads
        ├── OutcomeUnknownError               may have been applied: read timeout or 5xx on a
        │                                     submit; verify (look the order up) before any retry
        ├── UnparseableResponseError          the broker answered 2xx but the body cannot be read
        │                                     (the request was handled); never retried blindly
        └── ClientSideError                   failed inside this process (a programming or
                                              configuration error: ValueError, TypeError, a bad
                                              header or URL); never retried

Every :class:`BrokerError` carries what is known: ``order_id``, ``client_order_id``,
``status_code``, ``code`` (Alpaca's 8-digit code) and the original exception as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "ClientSideError",
    "FillguardError",
    "InvalidInputError",
    "OutcomeUnknownError",
    "RefusedError",
    "TransientError",
    "UnparseableResponseError",
]


class FillguardError(Exception):
    """Base of every error fillguard raises."""


class InvalidInputError(FillguardError, ValueError):
    """An argument or config value is invalid; ``field`` names it. No request was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class BrokerError(FillguardError):
    """A failure talking to the broker, with everything we know about the order."""

    def __init__(
        self,
        message: str,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
        status_code: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.status_code = status_code
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [self.message]
        for name in ("order_id", "client_order_id", "status_code", "code"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        return " ".join(parts)


class RefusedError(BrokerError):
    """The broker surely refused the request (auth, not found, invalid); retrying won't help."""


class TransientError(BrokerError):
    """The request surely was not applied (connect failure, 429, 5xx on a read); retry later.

    ``retry_after`` holds the broker's hint in seconds, when it gave one.
    """


class OutcomeUnknownError(BrokerError):
    """The request may have been applied (timeout or 5xx on a write): verify before retrying."""


class UnparseableResponseError(BrokerError):
    """A 2xx whose body could not be parsed: the broker handled the request; its answer is lost."""


class ClientSideError(BrokerError):
    """The request failed in this process before or while being made; repeating will not help.

    ``sent_nothing`` is True when the failure is known to come before any byte left (a bad
    header value or URL found while the request was prepared).
    """

    def __init__(
        self,
        message: str,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
        sent_nothing: bool = False,
    ) -> None:
        super().__init__(message, order_id=order_id, client_order_id=client_order_id)
        self.sent_nothing = sent_nothing
