"""The headers every STET call carries besides its credentials (docs/decisions.md#request-headers).

- ``X-Request-ID``: mandatory, chosen by the TPP, echoed on every response (errors included).
- ``Accept``: HAL JSON or plain JSON (anything else → 406); ``Content-Type`` of a body must be
  ``application/json`` (→ 415).
- ``PSU-*``: the context of the PSU's own request to the TPP. ``PSU-IP-Address`` decides
  whether the PSU is present (no limit) or not (the unattended-access limit applies), so it must
  be a real IP address; the other PSU-* headers are checked for shape and kept for the audit.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from stetgate.psd2.errors import BadRequest, NotAcceptable, UnsupportedMediaType
from stetgate.serving.request_id import (
    REQUEST_ID_HEADER,
    REQUEST_ID_MAX_LENGTH,
    request_id_of,
    request_id_sent,
)

_GEO = re.compile(r"GEO:-?[0-9]{1,2}(?:\.[0-9]{1,8})?[,;]-?[0-9]{1,3}(?:\.[0-9]{1,8})?")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_MAX_PSU_HEADER = 1024
_ACCEPTED_MEDIA = frozenset({"application/hal+json", "application/json", "application/*", "*/*"})


def header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI headers as name (lower case, as ASGI gives them) → value, built once per request;
    a repeated header's values are joined with ", " (RFC 9110 §5.3)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def require_request_id(headers: Mapping[str, str]) -> str:
    """The X-Request-ID STET makes mandatory, read by `stetgate.serving.request_id`; missing
    or malformed is the STET 400."""
    value = request_id_of(headers)
    if value is not None:
        return value
    if not request_id_sent(headers):
        raise BadRequest(f"missing request header '{REQUEST_ID_HEADER}'")
    raise BadRequest(
        f"{REQUEST_ID_HEADER} must be 1-{REQUEST_ID_MAX_LENGTH} visible ASCII characters"
    )


def require_acceptable(headers: Mapping[str, str]) -> None:
    """RFC 9110 §12.5.1: refuse with 406 when no acceptable media type can be produced."""
    accept = headers.get("accept")
    if accept is None or not accept.strip():
        return
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if media.lower() not in _ACCEPTED_MEDIA:
            continue
        quality = next((p[2:] for p in params if p.lower().startswith("q=")), "1")
        try:
            if float(quality) > 0:
                return
        except ValueError:
            continue
    raise NotAcceptable("this API produces application/hal+json (or application/json) only")


def require_json_body(headers: Mapping[str, str]) -> None:
    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("the request body must be application/json")


@dataclass(frozen=True, slots=True)
class PsuContext:
    """STET PSU-* headers. ``ip_address`` present ⇔ the PSU is actively connected."""

    ip_address: str | None = None
    ip_port: int | None = None
    http_method: str | None = None
    date: str | None = None
    geo_location: str | None = None
    user_agent: str | None = None
    referer: str | None = None
    accept: str | None = None
    accept_charset: str | None = None
    accept_encoding: str | None = None
    accept_language: str | None = None
    device_id: str | None = None

    @property
    def psu_present(self) -> bool:
        return self.ip_address is not None


_FREE_TEXT = {
    "psu-date": "date",
    "psu-user-agent": "user_agent",
    "psu-referer": "referer",
    "psu-accept": "accept",
    "psu-accept-charset": "accept_charset",
    "psu-accept-encoding": "accept_encoding",
    "psu-accept-language": "accept_language",
    "psu-device-id": "device_id",
}


def parse_psu_context(headers: Mapping[str, str]) -> PsuContext:
    """Parse the PSU-* headers; raises BadRequest naming the header that is malformed."""
    values: dict[str, object] = {}
    ip = headers.get("psu-ip-address")
    if ip is not None:
        try:
            values["ip_address"] = str(ipaddress.ip_address(ip.strip()))
        except ValueError:
            raise BadRequest("PSU-IP-Address must be an IPv4 or IPv6 address") from None
    port = headers.get("psu-ip-port")
    if port is not None:
        if not port.strip().isdigit() or not 0 <= int(port) <= 65535:
            raise BadRequest("PSU-IP-Port must be a port number (0-65535)")
        values["ip_port"] = int(port)
    method = headers.get("psu-http-method")
    if method is not None:
        if method.strip().upper() not in _METHODS:
            raise BadRequest("PSU-HTTP-Method must be an HTTP method (GET, POST, PUT, ...)")
        values["http_method"] = method.strip().upper()
    geo = headers.get("psu-geo-location")
    if geo is not None:
        if _GEO.fullmatch(geo.strip()) is None:
            raise BadRequest("PSU-GEO-Location must read GEO:<latitude>;<longitude>")
        values["geo_location"] = geo.strip()
    for header, name in _FREE_TEXT.items():
        value = headers.get(header)
        if value is not None:
            if len(value) > _MAX_PSU_HEADER:
                raise BadRequest(f"{header} is longer than {_MAX_PSU_HEADER} characters")
            values[name] = value
    return PsuContext(**values)  # type: ignore[arg-type]
