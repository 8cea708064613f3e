"""The ``X-Request-ID`` of the API call a bank-port call serves, for adapters to forward.

Why a context variable rather than a ``request_id`` parameter on every port method: the ports
(`stetgate.bank.backend`) are the contract a bank implements, and a correlation id is
transport metadata, not banking data — an in-process adapter (the demo bank, a test double)
has no use for it, and adding it to six signatures would break every existing adapter. The
resource API sets it around the synchronous function it runs on the blocking pool
(`stetgate.serving.blocking`), *inside* that thread (``run_in_executor`` does not carry
context variables over), and adapters that talk to another system read it with
`current_request_id` (`stetgate.bank_http` sends it as ``X-Request-ID``; STET v1.4.2 Part II
§3 makes it the end-to-end correlation id).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_REQUEST_ID: ContextVar[str | None] = ContextVar("stetgate_bank_request_id", default=None)


def current_request_id() -> str | None:
    """The request id of the call being served on this thread, if any."""
    return _REQUEST_ID.get()


@contextmanager
def serving_request(request_id: str | None) -> Iterator[None]:
    """Bank calls made inside the block carry ``request_id``."""
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


__all__ = ["current_request_id", "serving_request"]
