"""The objects one app instance shares between requests, built once by `create_app`.

Handlers reach them through ``request.app.state.services``; nothing is a module-level global,
so tests build as many independent apps (databases, clocks, trust stores) as they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request

from stetgate.clock import Clock
from stetgate.keys import InstanceKeys
from stetgate.serving.tpp_identity import TppIdentity
from stetgate.settings import Settings


@dataclass
class Services:
    settings: Settings
    clock: Clock
    engine: Engine
    keys: InstanceKeys
    tpp_identity: TppIdentity
    issuer: str
    extras: dict[str, Any] = field(default_factory=dict)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
