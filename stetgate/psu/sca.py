"""Strong customer authentication methods: the possession factor after the password.

An SCA method is a small `ScaMethod` object (a `typing.Protocol`), so a bank adds its own
(SMS OTP, FIDO…) without touching the pages. The two real ones:

- ``totp``: a 6-digit RFC 6238 code from the PSU's authenticator (shown, in the sandbox, by the
  demo phone page or ``stetgate psu totp``); form field ``otp``.
- ``app``: decoupled confirmation in the banking app (PSD2 RTS Art. 4 with a separate device):
  the journey gets a challenge reference, the app (demo phone page, ``stetgate psu approve``)
  approves or rejects it, the PSU page polls ``/psu/sca/status`` and has a no-script button.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from stetgate.bank.psus import Psu, PsuDirectory
from stetgate.psu.journeys import (
    CHALLENGE_APPROVED,
    CHALLENGE_PENDING,
    CHALLENGE_REJECTED,
    Journey,
    new_challenge_id,
)


class ScaCheck(Enum):
    COMPLETED = "completed"  # the factor is proven
    FAILED = "failed"  # a wrong factor: counts as a failed attempt
    PENDING = "pending"  # nothing decided yet (decoupled: not confirmed)
    REJECTED = "rejected"  # the PSU said no on its device


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
        self, directory: PsuDirectory, journey: Journey, form: Mapping[str, str], now: datetime
    ) -> ScaCheck: ...


class TotpMethod:
    name = "totp"
    template = "otp.html"

    def enrolled(self, psu: Psu) -> bool:
        return psu.has_totp

    def begin(self) -> dict[str, Any]:
        return {"app_challenge_id": None, "app_challenge_status": None}

    def check(
        self, directory: PsuDirectory, journey: Journey, form: Mapping[str, str], now: datetime
    ) -> ScaCheck:
        code = "".join(form.get("otp", "").split())
        if journey.psu_id is None or not code:
            return ScaCheck.FAILED
        ok = directory.check_totp(journey.psu_id, code, now)
        return ScaCheck.COMPLETED if ok else ScaCheck.FAILED


class AppMethod:
    name = "app"
    template = "app_wait.html"

    def enrolled(self, psu: Psu) -> bool:
        return psu.app_sca

    def begin(self) -> dict[str, Any]:
        return {"app_challenge_id": new_challenge_id(), "app_challenge_status": CHALLENGE_PENDING}

    def check(
        self, directory: PsuDirectory, journey: Journey, form: Mapping[str, str], now: datetime
    ) -> ScaCheck:
        if journey.app_challenge_status == CHALLENGE_APPROVED:
            return ScaCheck.COMPLETED
        if journey.app_challenge_status == CHALLENGE_REJECTED:
            return ScaCheck.REJECTED
        return ScaCheck.PENDING


def default_sca_methods() -> tuple[ScaMethod, ...]:
    return (TotpMethod(), AppMethod())


def enrolled_methods(methods: Sequence[ScaMethod], psu: Psu) -> list[ScaMethod]:
    """The methods offered to `psu`, in the bank's order."""
    return [method for method in methods if method.enrolled(psu)]


def method_named(methods: Sequence[ScaMethod], name: str | None) -> ScaMethod | None:
    return next((method for method in methods if method.name == name), None)
