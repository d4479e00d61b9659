"""Broadcast: websocket, POST and background task reach every client."""

from __future__ import annotations

import asyncio

import pytest
from quart import Quart, websocket
from quart.typing import TestClientProtocol as Client

from {{ cookiecutter.package_name }}.broadcast import broadcast, collect_websocket
from {{ cookiecutter.package_name }}.broadcast.flood import TokenBucket
from {{ cookiecutter.package_name }}.broadcast.hub import (
    EVERYONE,
    Hub,
    QueueSubscriber,
)
from {{ cookiecutter.package_name }}.messages import Message

from ..asgi_websocket import Closed, asgi_connect
from ..helpers import METRICS_TOKEN, AppFactory, RecordingSocket, metric, wait_for
from .broadcasting import subscriber_count

TOKEN = "test-token"


@pytest.fixture
async def app_with_token(make_app: AppFactory) -> Quart:
    return await make_app(BROADCAST_TOKEN=TOKEN)


async def test_websocket_message_reaches_every_client_and_the_sender(
    app_with_token: Quart,
) -> None:
    async with (
        asgi_connect(app_with_token, "/ws/broadcast") as alice,
        asgi_connect(app_with_token, "/ws/broadcast") as bob,
        asgi_connect(app_with_token, "/ws/broadcast") as carol,
    ):
        await wait_for(lambda: subscriber_count(app_with_token) == 3)
        await alice.send("hello all")
        for ws in (alice, bob, carol):
            assert await ws.receive() == "hello all"
        await bob.send(b"\x01\x02")
        for ws in (alice, bob, carol):
            assert await ws.receive() == b"\x01\x02"


async def test_post_reaches_every_client(app_with_token: Quart) -> None:
    client = app_with_token.test_client()
    async with (
        asgi_connect(app_with_token, "/ws/broadcast") as one,
        asgi_connect(app_with_token, "/ws/broadcast") as two,
    ):
        await wait_for(lambda: subscriber_count(app_with_token) == 2)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = await client.post("/api/broadcast", data="from POST", headers=headers)
        assert response.status_code == 204
        assert await one.receive() == "from POST"
        assert await two.receive() == "from POST"

        headers["Content-Type"] = "application/octet-stream"
        response = await client.post("/api/broadcast", data=b"\xff\x00", headers=headers)
        assert response.status_code == 204
        assert await one.receive() == b"\xff\x00"


async def test_background_task_can_broadcast(app_with_token: Quart) -> None:
    async with asgi_connect(app_with_token, "/ws/broadcast") as ws:
        await wait_for(lambda: subscriber_count(app_with_token) == 1)
        app_with_token.add_background_task(broadcast, "from the background")
        assert await ws.receive() == "from the background"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {TOKEN}", "Bearer", f"bearer {TOKEN}x"],
    ids=["missing", "wrong", "not-bearer", "empty", "prefix"],
)
async def test_post_without_the_right_token_is_401(
    app_with_token: Quart, authorization: str | None
) -> None:
    client = app_with_token.test_client()
    async with asgi_connect(app_with_token, "/ws/broadcast") as ws:
        await wait_for(lambda: subscriber_count(app_with_token) == 1)
        headers = {"Authorization": authorization} if authorization else {}
        response = await client.post("/api/broadcast", data="nope", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        # Nothing was delivered: the next message is the one sent after.
        await ws.send("after")
        assert await ws.receive() == "after"


async def test_post_is_refused_when_no_token_is_configured(client: Client) -> None:
    response = await client.post(
        "/api/broadcast", data="x", headers={"Authorization": "Bearer anything"}
    )
    assert response.status_code == 403


async def test_post_rejects_a_body_that_is_not_utf8(app_with_token: Quart) -> None:
    response = await app_with_token.test_client().post(
        "/api/broadcast", data=b"\xff", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 400


async def test_disconnect_removes_the_queue(app_with_token: Quart) -> None:
    async with asgi_connect(app_with_token, "/ws/broadcast"):
        async with asgi_connect(app_with_token, "/ws/broadcast"):
            await wait_for(lambda: subscriber_count(app_with_token) == 2)
        await wait_for(lambda: subscriber_count(app_with_token) == 1)
    await wait_for(lambda: subscriber_count(app_with_token) == 0)


async def test_oversized_broadcast_message_closes_with_1009(make_app: AppFactory) -> None:
    app = await make_app(MAX_MESSAGE_SIZE=8)
    async with asgi_connect(app, "/ws/broadcast") as ws:
        await ws.send("123456789")
        with pytest.raises(Closed) as closed:
            await ws.receive()
        assert closed.value.code == 1009


async def test_hub_cuts_off_a_full_queue_and_serves_the_rest() -> None:
    hub, stalled_socket = Hub(queue_size=3), RecordingSocket()
    with hub.subscribe(QueueSubscriber(EVERYONE, stalled_socket, 3)) as stalled:
        with hub.subscribe(QueueSubscriber(EVERYONE, RecordingSocket(), 3)) as reader:
            for number in range(10):
                hub.deliver(number.to_bytes())
                assert reader.queue.get_nowait() == number.to_bytes()
            assert hub.subscriber_count() == 1
        assert stalled.queue.empty()  # what it queued is freed at once
        await wait_for(lambda: stalled_socket.close_codes() == [1013])
    # The reader's ten, and the three the stalled one queued before it was cut off.
    assert hub_metric(hub, "broadcast_deliveries_total") == 13
    assert hub_metric(hub, "websockets_closed_by_server_total", {"reason": "slow"}) == 1


def hub_metric(hub: Hub, name: str, labels: dict[str, str] | None = None) -> float | None:
    """One sample of the hub's metrics (its app's, or its own)."""
    return hub.metrics.registry.get_sample_value(name, labels)


async def test_hub_survives_subscribers_coming_and_going_during_delivery() -> None:
    hub = Hub(queue_size=1000)
    received: list[int] = []

    async def short_lived(ticks: int) -> None:
        with hub.subscribe(QueueSubscriber(EVERYONE, RecordingSocket(), 1000)):
            for _ in range(ticks):
                await asyncio.sleep(0)

    async def publisher() -> None:
        for _ in range(200):
            hub.deliver("tick")
            received.append(hub.subscriber_count())
            await asyncio.sleep(0)

    await asyncio.gather(publisher(), *(short_lived(n % 17) for n in range(300)))
    assert max(received) > 0  # deliveries met subscribers on their way in and out
    assert hub.subscriber_count() == 0
    assert hub.topics == {}  # each one removed, and its topic with the last
    assert not hub.topics


async def test_queue_size_must_be_positive(make_app: AppFactory) -> None:
    with pytest.raises(ValueError, match="QUART_BROADCAST_QUEUE_SIZE"):
        await make_app(BROADCAST_QUEUE_SIZE=-1)


@pytest.mark.parametrize("path", ["/ws/broadcast", "/ws/rooms/flood"])
async def test_a_flooding_client_is_closed_with_1008_and_others_served(
    make_app: AppFactory, path: str
) -> None:
    app = await make_app(MESSAGES_PER_SECOND=5, MESSAGE_BURST=10)
    hub: Hub = app.extensions["broker"].hub
    topic = path.removeprefix("/ws/rooms/") if "rooms" in path else EVERYONE
    async with asgi_connect(app, path) as flooder, asgi_connect(app, path) as calm:
        await wait_for(lambda: hub.subscriber_count(topic) == 2)
        for number in range(30):  # far past the burst, at once
            await flooder.send(f"flood {number}")
        with pytest.raises(Closed) as closed:
            while True:
                await flooder.receive()
        assert closed.value.code == 1008
        assert closed.value.reason == "too many messages: at most 5 a second"
        received = 0
        while received < 10:  # the burst went through, to everyone
            message = await calm.receive()
            received += "flood" in str(message)
        await calm.send("calm")
        while "calm" not in str(await calm.receive()):
            pass


class Clock:
    """A clock that moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_lets_a_burst_through_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=4, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # two tokens at 4 a second
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.25  # exactly one
    assert bucket.take() is True
    assert bucket.take() is False


def test_the_bucket_saves_up_no_more_than_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=10, burst=2, clock=clock)
    clock.now += 3600
    assert [bucket.take() for _ in range(3)] == [True, True, False]


async def test_a_flood_close_is_counted_by_its_reason(make_app: AppFactory) -> None:
    app = await make_app(MESSAGES_PER_SECOND=1, MESSAGE_BURST=1, METRICS_TOKEN=METRICS_TOKEN)
    closed = 'websockets_closed_by_server_total{reason="flood"}'
    before = await metric(app, closed)
    async with asgi_connect(app, "/ws/broadcast") as flooder:
        for number in range(3):
            await flooder.send(f"flood {number}")
        with pytest.raises(Closed):
            while True:
                await flooder.receive()
    assert await metric(app, closed) == before + 1


async def test_each_broadcast_sent_to_a_client_is_counted_once(make_app: AppFactory) -> None:
    app = await make_app(METRICS_TOKEN=METRICS_TOKEN)
    sent = 'websocket_messages_sent_total{route="/ws/broadcast"}'
    async with asgi_connect(app, "/ws/broadcast") as ws:
        await wait_for(lambda: subscriber_count(app) == 1)
        before = await metric(app, sent)
        async with app.app_context():
            for number in range(3):
                await broadcast(str(number))
        assert [await ws.receive() for _ in range(3)] == ["0", "1", "2"]
        assert await metric(app, sent) == before + 3


async def test_the_hub_counts_its_subscribers_and_beats_nobody_without_error() -> None:
    hub = Hub(queue_size=1)
    everyone = QueueSubscriber(EVERYONE, RecordingSocket(), 1)
    with hub.subscribe(everyone), hub.subscribe(QueueSubscriber("r", RecordingSocket(), 1)):
        assert hub_metric(hub, "broadcast_subscribers") == 2
        hub.beat("beat", "nobody's room")
    assert hub_metric(hub, "broadcast_subscribers") == 0


async def test_deliveries_are_counted(make_app: AppFactory) -> None:
    app = await make_app(METRICS_TOKEN="m")
    headers = {"Authorization": "Bearer m"}

    async def deliveries() -> float:
        response = await app.test_client().get("/metrics", headers=headers)
        lines = (await response.get_data(as_text=True)).splitlines()
        return next(float(line.split()[-1]) for line in lines if line.startswith("broadcast_d"))

    before = await deliveries()
    async with (
        asgi_connect(app, "/ws/broadcast") as one,
        asgi_connect(app, "/ws/broadcast") as two,
    ):
        await wait_for(lambda: subscriber_count(app) == 2)
        await one.send("counted")
        assert await one.receive() == await two.receive() == "counted"
    assert await deliveries() == before + 2


async def test_collect_websocket_hands_each_custom_handler_a_bounded_queue(
    make_app: AppFactory,
) -> None:
    """The documented way to write your own broadcast handler, and its slow-client bound."""
    app = await make_app(BROADCAST_QUEUE_SIZE=2)

    @app.websocket("/ws/forward")
    @collect_websocket
    async def forward(queue: asyncio.Queue[Message]) -> None:
        while True:
            await websocket.send(await queue.get())

    @app.websocket("/ws/stalled")
    @collect_websocket
    async def stalled(queue: asyncio.Queue[Message]) -> None:
        await websocket.accept()
        await asyncio.sleep(3600)  # never reads its queue

    async with asgi_connect(app, "/ws/forward") as reader, asgi_connect(app, "/ws/stalled") as slow:
        await wait_for(lambda: subscriber_count(app) == 2)
        for number in range(4):  # the reader keeps up; the stalled queue holds 2
            async with app.app_context():
                await broadcast(f"message {number}")
            assert await reader.receive() == f"message {number}"
        with pytest.raises(Closed) as closed:
            while True:
                await slow.receive()
        assert closed.value.code == 1013
        assert subscriber_count(app) == 1
