"""Path and query parameters of the STET AISP endpoints, validated before anything is read.

- ``accountResourceId``: ``^([a-zA-Z0-9 /\\-?:\\()\\.,']{1,35})$`` (STET OAS 1.4.0.47, kept
  since).
- ``dateFrom`` (inclusive) / ``dateTo`` (exclusive): STET types them date-time; the bound
  applies to the booking (imputation) date, so the date part of an RFC 3339 date-time is what
  counts; a plain ``YYYY-MM-DD`` is accepted too.
- ``entryReferenceFrom``: entries whose ``entryReference`` is greater (stetgate's references
  are decimal integers).
- a parameter given twice is refused rather than guessed.
"""

from __future__ import annotations

import re
from datetime import date

from starlette.datastructures import QueryParams

from stetgate.psd2.errors import BadRequest

ACCOUNT_RESOURCE_ID = re.compile(r"[a-zA-Z0-9 /\-?:\()\.,']{1,35}")
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})?)?"
)
_ENTRY_REFERENCE = re.compile(r"[0-9]{1,18}")


def single(query: QueryParams, name: str) -> str | None:
    values = query.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"query parameter {name} is given more than once")
    return values[0] if values else None


def account_resource_id(value: str) -> str:
    if ACCOUNT_RESOURCE_ID.fullmatch(value) is None:
        raise BadRequest("accountResourceId must be 1-35 characters of [a-zA-Z0-9 /-?:().,']")
    return value


def date_bound(value: str, name: str) -> date:
    """The date of a ``dateFrom``/``dateTo`` value (RFC 3339 date-time, or a full-date)."""
    match = _DATE_TIME.fullmatch(value.strip())
    if match is None:
        raise BadRequest(f"{name} must be an RFC 3339 date-time (or YYYY-MM-DD)")
    year, month, day = (int(part) for part in match.group(1, 2, 3))
    hour, minute, second = (int(part) if part is not None else 0 for part in match.group(4, 5, 6))
    try:
        if hour > 23 or minute > 59 or second > 60:
            raise ValueError
        return date(year, month, day)
    except ValueError:
        raise BadRequest(f"{name} is not a valid date-time") from None


def entry_reference(value: str) -> int:
    if _ENTRY_REFERENCE.fullmatch(value) is None:
        raise BadRequest(
            "entryReferenceFrom must be an entryReference of this bank (a decimal number)"
        )
    return int(value)
