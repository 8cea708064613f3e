"""Serving the theme's stylesheet and logo (`stetgate.psu.theme`) under the static path.

They come from memory — the bytes checked at start-up — with their own content type and
``nosniff`` (the middleware's), so a browser never guesses another type. An SVG also carries a
CSP with ``sandbox`` and no script source: opened on its own rather than through the page's
``<img>``, it still runs nothing. The URL carries the content's hash (``?v=``): with the
current hash the answer may be cached for a year, any other URL is revalidated.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from stetgate.psu.theme import ASSETS_PATH, theme_of

SVG_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


async def theme_asset(request: Request) -> Response:
    asset = theme_of(request).assets.get(request.path_params["name"])
    if asset is None:
        return PlainTextResponse("not found", status_code=404)
    current = request.query_params.get("v") == asset.version
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "ETag": f'"{asset.version}"',
    }
    if asset.media_type == "image/svg+xml":
        headers["Content-Security-Policy"] = SVG_POLICY
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def routes() -> list[BaseRoute]:
    """Before the static mount in the route list, which would otherwise answer 404."""
    return [Route(f"{ASSETS_PATH}/{{name}}", theme_asset, methods=["GET"])]
