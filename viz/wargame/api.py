"""The wargame's JSON API under ``/api`` (Starlette routes over :class:`viz.wargame.hub.Hub`).

Documented with examples in docs/WARGAME_API.md. Tokens come as ``Authorization: Bearer
TOKEN``. A refused request answers ``{"error": MESSAGE}`` with 400 (bad input, naming the
field or lever and its range), 401 (no or bad token), 403 (a token without the right),
404 (no such game) or 409 (the game is paused or finished). Work runs in a thread pool so the
event loop that also serves the Solara pages never waits on a model step.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from viz.wargame.game import GameError
from viz.wargame.hub import get_hub


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


async def _body(request: Request):
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise GameError(400, "body: not valid JSON") from None


def _handler(fn, *, with_body: bool = False, raw: bool = False):
    async def endpoint(request: Request) -> Response:
        try:
            body = await _body(request) if with_body else None
            args = [get_hub()]
            gid = request.path_params.get("game_id")
            result = await run_in_threadpool(fn, *args, gid, _token(request), body)
        except GameError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        if raw:
            return Response(
                result,
                media_type="application/zip",
                headers={"Content-Disposition": f'attachment; filename="wargame-{gid}.zip"'},
            )
        return JSONResponse(
            result, status_code=201 if request.method == "POST" and fn is _create else 200
        )

    return endpoint


def _create(hub, gid, token, body):
    return hub.create(body)


def _join(hub, gid, token, body):
    return hub.join(gid, body)


def _state(hub, gid, token, body):
    return hub.state(gid, token)


def _moves(hub, gid, token, body):
    return hub.moves(gid, token, body)


def _advance(hub, gid, token, body):
    return hub.advance(gid, token, body)


def _log(hub, gid, token, body):
    return hub.log(gid, token)


def _export(hub, gid, token, body):
    return hub.export(gid, token)


def _message(hub, gid, token, body):
    return hub.message(gid, token, body)


def _inject(hub, gid, token, body):
    return hub.inject(gid, token, body)


def _pause(hub, gid, token, body):
    return hub.pause(gid, token, body)


def _kick(hub, gid, token, body):
    return hub.kick(gid, token, body)


def _debrief(hub, gid, token, body):
    return hub.debrief(gid, token)


G = "/api/games/{game_id}"
routes = [
    Route("/api/games", _handler(_create, with_body=True), methods=["POST"]),
    Route(f"{G}/join", _handler(_join, with_body=True), methods=["POST"]),
    Route(f"{G}/state", _handler(_state), methods=["GET"]),
    Route(f"{G}/moves", _handler(_moves, with_body=True), methods=["PUT"]),
    Route(f"{G}/advance", _handler(_advance, with_body=True), methods=["POST"]),
    Route(f"{G}/log", _handler(_log), methods=["GET"]),
    Route(f"{G}/export", _handler(_export, raw=True), methods=["GET"]),
    Route(f"{G}/messages", _handler(_message, with_body=True), methods=["POST"]),
    Route(f"{G}/inject", _handler(_inject, with_body=True), methods=["POST"]),
    Route(f"{G}/pause", _handler(_pause, with_body=True), methods=["POST"]),
    Route(f"{G}/kick", _handler(_kick, with_body=True), methods=["POST"]),
    Route(f"{G}/debrief", _handler(_debrief), methods=["GET"]),
]
"""The API's routes; the server puts them in front of Solara's own."""
