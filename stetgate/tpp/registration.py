"""The register API's answer as the TPP keeps it (RFC 7591 §3.2.1, RFC 7592;
docs/register-api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Registration:
    """What the register API answered (RFC 7591 §3.2.1): keep ``registration_access_token``,
    the bank shows it once and needs it to read, update or delete the registration."""

    client_id: str
    registration_access_token: str
    registration_client_uri: str
    metadata: dict[str, Any]

    @classmethod
    def from_response(
        cls, body: Mapping[str, Any], previous: Registration | None = None
    ) -> Registration:
        token = body.get("registration_access_token") or (
            previous.registration_access_token if previous else ""
        )
        return cls(
            client_id=str(body["client_id"]),
            registration_access_token=str(token),
            registration_client_uri=str(
                body.get("registration_client_uri")
                or (previous.registration_client_uri if previous else "")
            ),
            metadata=dict(body),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "registration_access_token": self.registration_access_token,
            "registration_client_uri": self.registration_client_uri,
            "metadata": self.metadata,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Registration:
        return cls(
            str(data["client_id"]),
            str(data["registration_access_token"]),
            str(data["registration_client_uri"]),
            dict(data.get("metadata") or {}),
        )
