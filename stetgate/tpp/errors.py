"""How the TPP kit reports a refusal: the bank's (`BankError`) or its profile's (`ProfileGap`)."""

from __future__ import annotations

from typing import Any

import httpx


class BankError(Exception):
    """The bank answered with an error (OAuth JSON, STET ErrorModel, or anything else)."""

    def __init__(
        self, status: int, body: Any, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after
        """Seconds from a ``Retry-After`` header (RFC 9110 §10.2.3; a 429 of the unattended
        limit carries one), None without a usable one."""

    @classmethod
    def from_response(cls, response: httpx.Response) -> BankError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:500]
        if isinstance(body, dict):
            detail = body.get("error_description") or body.get("message") or body.get("error")
        else:
            detail = body
        header = response.headers.get("Retry-After", "")
        retry_after = int(header) if header.isdigit() else None
        return cls(
            response.status_code,
            body,
            f"HTTP {response.status_code}: {detail}",
            retry_after=retry_after,
        )

    @property
    def oauth_error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body, dict) else None


class ProfileGap(ValueError):
    """The bank's profile rules the operation out before any request: the endpoint is
    ``none`` or ``unknown``, or the ``keyId`` is of a form the bank does not accept."""
