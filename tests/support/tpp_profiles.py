"""Bank profiles for TPP-client tests: the built-in ``sandbox`` with some fields changed."""

from __future__ import annotations

from typing import Any

from stetgate.tpp.bank_profile import BankProfile, builtin_profile


def sandbox_with(**changes: Any) -> BankProfile:
    """The sandbox profile with ``changes``: ``section={field: value}`` merges into a section,
    ``field=value`` replaces a top-level field; validated like a file."""
    data = builtin_profile("sandbox").model_dump(mode="json")
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return BankProfile.from_mapping(data, "test")
