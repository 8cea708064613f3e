"""The SCA method port: the possession or inherence factor the PSU proves after identification.

A bank offers its own methods (SMS OTP, card reader, FIDO, "confirm in the banking app") by
passing objects of this `typing.Protocol` to ``create_app(sca_methods=...)``; the PSU pages only
know this interface (PSD2 RTS (EU) 2018/389 Art. 4: two independent elements, one of which is
possession or inherence). stetgate's own methods are in `stetgate.psu.sca`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from stetgate.bank.psus import Psu, PsuDirectory

CHALLENGE_PENDING = "pending"
CHALLENGE_APPROVED = "approved"
CHALLENGE_REJECTED = "rejected"
"""States of a decoupled challenge (``psu_journeys.app_challenge_status``)."""


class ScaCheck(Enum):
    COMPLETED = "completed"  # the factor is proven
    FAILED = "failed"  # a wrong factor: counts as a failed attempt
    PENDING = "pending"  # nothing decided yet (decoupled: not confirmed)
    REJECTED = "rejected"  # the PSU said no on its device


class ScaAttempt(Protocol):
    """What a method may read of the PSU's journey while it checks a factor."""

    @property
    def psu_id(self) -> str | None: ...

    @property
    def app_challenge_status(self) -> str | None: ...


class ScaMethod(Protocol):
    name: str
    """Form value of the method choice (field ``method``) and ``psu_journeys.sca_method``."""

    template: str
    """The page that collects or waits for the factor."""

    def enrolled(self, psu: Psu) -> bool: ...

    def begin(self) -> dict[str, Any]:
        """Journey columns to set when the PSU starts this method."""
        ...

    def check(
        self, directory: PsuDirectory, attempt: ScaAttempt, form: Mapping[str, str], now: datetime
    ) -> ScaCheck: ...
