"""The async client is what the lifecycle needs from a bank as it is (no adapter): the same
coroutines, parameters and keyword options as `BankAccess` (mypy also accepts an
``AsyncStetBankClient`` where a ``BankAccess`` is expected; this keeps it true at run time)."""

from __future__ import annotations

import inspect
from typing import get_type_hints

from stetgate.tpp.async_client import AsyncStetBankClient
from stetgate.tpp.flows import ApiOptions
from stetgate.tpp.lifecycle.bank_access import BankAccess


def _positional(function: object) -> list[str]:
    return [
        p.name
        for p in inspect.signature(function).parameters.values()  # type: ignore[arg-type]
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def test_the_async_client_has_the_coroutines_the_lifecycle_calls() -> None:
    for name in ("refresh", "api"):
        ours, theirs = getattr(AsyncStetBankClient, name), getattr(BankAccess, name)
        assert inspect.iscoroutinefunction(ours), name
        assert _positional(ours) == _positional(theirs), name


def test_the_async_client_takes_the_psu_headers_the_scheduler_passes() -> None:
    assert "psu_headers" in get_type_hints(ApiOptions)
