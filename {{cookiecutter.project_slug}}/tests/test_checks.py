"""The checks in front of the app: bearer tokens, the Origin, the connection cap."""

from __future__ import annotations

from typing import Any

import pytest
from quart import Quart

from {{ cookiecutter.package_name }}.limits import RETRY_AFTER_SECONDS, refuse
from {{ cookiecutter.package_name }}.origin import origin_allowed
from {{ cookiecutter.package_name }}.tokens import refuse_without_token

from .asgi_websocket import Refused, asgi_connect
from .helpers import METRICS_TOKEN, AppFactory, metric

REFUSAL = ({"error": "missing or wrong bearer token"}, 401, {"WWW-Authenticate": "Bearer"})


async def check_token(app: Quart, authorization: str | None, expected: str = "s3cret") -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with app.test_request_context("/", headers=headers):
        return refuse_without_token(expected)


@pytest.mark.parametrize(
    "authorization", ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "Bearer   s3cret  "]
)
async def test_the_bearer_token_is_accepted_in_any_case_and_spacing(
    app: Quart, authorization: str
) -> None:
    assert await check_token(app, authorization) is None


@pytest.mark.parametrize(
    "authorization",
    [None, "", "s3cret", "Basic s3cret", "Bearer", "Bearer s3cre", "Bearer s3cret!", "Bearer é"],
)
async def test_anything_else_gets_the_401_that_names_the_scheme(
    app: Quart, authorization: str | None
) -> None:
    assert await check_token(app, authorization) == REFUSAL


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("http://example.test", True),  # this host
        ("HTTPS://EXAMPLE.TEST/", True),  # this host, in other case, with a slash
        ("https://app.example", True),  # configured
        ("https://app.example/", True),
        (" https://app.example ", True),
        ("https://evil.example", False),
        ("https://example.test.evil.example", False),
        ("https://app.example.evil", False),
        ("null", False),  # a sandboxed page or a file
    ],
)
def test_an_origin_is_allowed_only_from_this_host_or_the_list(
    origin: str | None, allowed: bool
) -> None:
    assert origin_allowed(origin, "Example.test", frozenset({"https://app.example"})) is allowed


async def test_a_refused_origin_is_named_and_counted(make_app: AppFactory) -> None:
    app = await make_app(METRICS_TOKEN=METRICS_TOKEN)
    refusals = 'websocket_handshakes_refused_total{reason="origin"}'
    before = await metric(app, refusals)
    evil = "https://evil.example"
    async with asgi_connect(app, "/ws", headers={"Origin": evil}) as ws:
        with pytest.raises(Refused) as refused:
            await ws.receive()
    assert refused.value.status == 403
    assert refused.value.body == b'{"error":"origin \'https://evil.example\' is not allowed"}\n'
    assert await metric(app, refusals) == before + 1


async def record_refusal(extensions: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(event: Any) -> None:
        sent.append(event)

    await refuse({"type": "websocket", "extensions": extensions}, send)  # type: ignore[arg-type]
    return sent


async def test_the_cap_answers_503_with_retry_after_and_a_whole_body() -> None:
    start, body = await record_refusal({"websocket.http.response": {}})
    assert start["type"] == "websocket.http.response.start"
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == str(RETRY_AFTER_SECONDS).encode()
    assert headers[b"content-type"] == b"application/json"
    assert body["type"] == "websocket.http.response.body"
    assert body["more_body"] is False
    assert body["body"] == b'{"error": "too many open websockets on this server: retry later"}'
    assert headers[b"content-length"] == str(len(body["body"])).encode()


async def test_the_cap_closes_with_1013_where_the_server_has_no_http_response() -> None:
    assert await record_refusal({}) == [
        {"type": "websocket.close", "code": 1013, "reason": "server full"}
    ]
