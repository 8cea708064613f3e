"""The SCA method port: the possession or inherence factor the PSU proves after identification.

A bank offers its own methods (SMS OTP, card reader, FIDO, "confirm in the banking app") by
passing objects of this `typing.Protocol` to ``create_app(sca_methods=...)``; the PSU pages only
know this interface (PSD2 RTS (EU) 2018/389 Art. 4: two independent elements, one of which is
possession or inherence). stetgate's own methods are in `stetgate.psu.sca`.

A decoupled method whose challenge lives in the bank's own SCA service also implements
`DecoupledScaMethod` (start the challenge with the context the PSU's device shows; read its
state while the PSU waits) and raises `ScaServiceUnavailable` when that service does not
answer; `stetgate.sca_http.HttpAppMethod` is the HTTP one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from stetgate.bank.psus import Psu, PsuDirectory

CHALLENGE_PENDING = "pending"
CHALLENGE_APPROVED = "approved"
CHALLENGE_REJECTED = "rejected"
CHALLENGE_EXPIRED = "expired"
"""States of a decoupled challenge (``psu_journeys.app_challenge_status``); ``expired`` only
comes from the bank's SCA service (its own expiry), the journey's limits are checked apart."""


class ScaCheck(Enum):
    COMPLETED = "completed"  # the factor is proven
    FAILED = "failed"  # a wrong factor: counts as a failed attempt
    REUSED = "reused"  # a one-time factor already used: counts as FAILED, its own message
    PENDING = "pending"  # nothing decided yet (decoupled: not confirmed)
    REJECTED = "rejected"  # the PSU said no on its device
    EXPIRED = "expired"  # the bank's SCA service let the challenge expire: the journey times out


class ScaServiceUnavailable(Exception):
    """The bank's SCA service did not answer (down, slow past its timeout, or an unusable
    answer). Nothing of the journey was changed: the PSU gets the "temporarily unavailable"
    page (503) and may try again."""


class ScaAttempt(Protocol):
    """What a method may read of the PSU's journey while it checks a factor."""

    @property
    def psu_id(self) -> str | None: ...

    @property
    def app_challenge_status(self) -> str | None: ...

    @property
    def app_challenge_id(self) -> str | None: ...

    @property
    def sca_service_challenge_id(self) -> str | None: ...


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


@dataclass(frozen=True)
class ChallengeContext:
    """What a decoupled method tells the PSU's device about the access being confirmed: the
    PSU sees who asks what before it approves (RTS Art. 5 dynamic-linking spirit, and the
    PSU's protection against a TPP it does not know)."""

    psu_id: str
    reference: str
    """The code shown on the waiting page (``ABCDE-FGHJK``), also shown on the device."""
    client_name: str | None
    """The TPP asking, or None for the PSU's own sign-in (connected apps)."""
    access: str | None
    """``aisp`` or ``cbpii`` for a TPP journey, None for connected apps."""
    expires_at: datetime
    """The journey's deadline: an answer after it is useless."""
    request_id: str | None


@runtime_checkable
class DecoupledScaMethod(Protocol):
    """An optional extension of `ScaMethod` for a method backed by the bank's own SCA service:
    it starts a challenge *with* the context (instead of ``begin``), and may be asked for the
    latest state while the PSU waits (poll mode). Both may raise `ScaServiceUnavailable`."""

    def start(self, context: ChallengeContext) -> dict[str, Any]:
        """Create the challenge on the bank's side; the journey columns to set."""
        ...

    def refresh(self, attempt: ScaAttempt, now: datetime) -> str | None:
        """The challenge's state now (a ``CHALLENGE_*`` value), recording any final answer;
        None when the method cannot tell (the stored state stands)."""
        ...
