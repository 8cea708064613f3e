"""Strong customer authentication methods: the possession factor after the password.

An SCA method is a small `ScaMethod` object (`stetgate.bank.sca.ScaMethod`), so a bank adds its own
(SMS OTP, FIDO…) without touching the pages. The two real ones:

- ``totp``: a 6-digit RFC 6238 code from the PSU's authenticator (shown, in the sandbox, by the
  demo phone page or ``stetgate psu totp``); form field ``otp``.
- ``app``: decoupled confirmation in the banking app (PSD2 RTS Art. 4 with a separate device):
  the journey gets a challenge reference, the app (demo phone page, ``stetgate psu approve``)
  approves or rejects it, the PSU page polls ``/psu/sca/status`` and has a no-script button.
  With ``sca_http_url`` set, `stetgate.app` offers `stetgate.sca_http.method.HttpAppMethod`
  under the same name instead: the challenge lives in the bank's SCA service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from stetgate.bank.psus import Psu, PsuDirectory, TotpCheck, totp_check
from stetgate.bank.sca import (
    CHALLENGE_APPROVED,
    CHALLENGE_PENDING,
    CHALLENGE_REJECTED,
    ScaAttempt,
    ScaCheck,
    ScaMethod,
)
from stetgate.psu.journeys import new_challenge_id

_TOTP_OUTCOMES = {
    TotpCheck.ACCEPTED: ScaCheck.COMPLETED,
    TotpCheck.WRONG: ScaCheck.FAILED,
    TotpCheck.REUSED: ScaCheck.REUSED,
}


class TotpMethod:
    name = "totp"
    template = "otp.html"

    def enrolled(self, psu: Psu) -> bool:
        return psu.has_totp

    def begin(self) -> dict[str, Any]:
        return {"app_challenge_id": None, "app_challenge_status": None}

    def check(
        self, directory: PsuDirectory, attempt: ScaAttempt, form: Mapping[str, str], now: datetime
    ) -> ScaCheck:
        code = "".join(form.get("otp", "").split())
        if attempt.psu_id is None or not code:
            return ScaCheck.FAILED
        answer = totp_check(directory.check_totp(attempt.psu_id, code, now))
        return _TOTP_OUTCOMES[answer]


class AppMethod:
    name = "app"
    template = "app_wait.html"

    def enrolled(self, psu: Psu) -> bool:
        return psu.app_sca

    def begin(self) -> dict[str, Any]:
        return {"app_challenge_id": new_challenge_id(), "app_challenge_status": CHALLENGE_PENDING}

    def check(
        self, directory: PsuDirectory, attempt: ScaAttempt, form: Mapping[str, str], now: datetime
    ) -> ScaCheck:
        if attempt.app_challenge_status == CHALLENGE_APPROVED:
            return ScaCheck.COMPLETED
        if attempt.app_challenge_status == CHALLENGE_REJECTED:
            return ScaCheck.REJECTED
        return ScaCheck.PENDING


def default_sca_methods() -> tuple[ScaMethod, ...]:
    return (TotpMethod(), AppMethod())


def enrolled_methods(methods: Sequence[ScaMethod], psu: Psu) -> list[ScaMethod]:
    """The methods offered to `psu`, in the bank's order."""
    return [method for method in methods if method.enrolled(psu)]


def method_named(methods: Sequence[ScaMethod], name: str | None) -> ScaMethod | None:
    return next((method for method in methods if method.name == name), None)
