"""``broadcast()``, ``collect_websocket`` and the set-up of this process's broker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from prometheus_client import Counter, Gauge
from quart import Quart, current_app, request

from ..messages import Message
from ..sockets import current_socket
from .broker import BroadcastUnavailable, Broker
{%- if cookiecutter.broadcast_backend == "redis" %}
from .broker_redis import RedisBroker as BackendBroker
{%- else %}
from .broker_memory import MemoryBroker as BackendBroker
{%- endif %}
from .flood import SenderQuota
from .heartbeat import Heartbeat
from .hub import EVERYONE, Hub, QueueSubscriber
from .rooms import check_frame_size, check_room_name

Handler = Callable[..., Awaitable[None]]


def init_broadcast(app: Quart) -> None:
    """Create this process's hub and broker, and expose the broadcast channel."""
    metrics = app.extensions["metrics"]
    hub = Hub(app.config["BROADCAST_QUEUE_SIZE"], metrics)
    broker = BackendBroker(app, hub)
    heartbeat = Heartbeat(hub, app.config["PING_INTERVAL"])
    app.before_serving(heartbeat.start)
    app.after_serving(heartbeat.stop)
    app.extensions["broker"] = broker
    app.extensions["health_checks"][broker.name] = broker.health
    up = Gauge("broker_up", "1 while the broker delivers, else 0.", registry=metrics.registry)
    up.set_function(lambda: float(broker.health() == "up"))
    app.extensions["publish_failures"] = Counter(
        "broker_publish_failures",
        "Publishes the broker could not send on.",
        registry=metrics.registry,
    )
    app.extensions["channels"]["broadcast"] = "/ws/broadcast"
    app.extensions["channels"]["rooms"] = None  # the room form's script joins ?room=<name>
    app.extensions["page_parts"]["before_log"].append("broadcast/room_form.html")
    app.context_processor(page_room)


async def page_room() -> dict[str, str | None]:
    """The page's ``room``: ``?room=`` (lobby) on the rooms channel, else None."""
    if request.args.get("channel") != "rooms":
        return {"room": None}
    return {"room": request.args.get("room", "lobby")}  # the page checks its form


def current_broker() -> Broker:
    broker: Broker = current_app.extensions["broker"]
    return broker


async def broadcast(
    message: Message, room: str | None = None, sender: str | None = None
) -> str | None:
    """Send ``message`` to every ``/ws/broadcast`` client, or to one room's clients.

    Room messages are text, kept in the room's history; their id is returned.
    ``sender`` becomes the frame's ``from``: the server's own messages have none.
    Call it from anything running in the app context: a route, a websocket
    handler, or a background task started with ``app.add_background_task``.
    Raises ``BroadcastUnavailable`` if the broker cannot take it (Redis down),
    ``ValueError`` for a bad room name or bytes sent to a room, ``FrameTooBig``
    (a ``ValueError``) for a text whose frame would be over ``QUART_MAX_MESSAGE_SIZE``,
    ``OverQuota`` for a ``sender`` past the quota of ``app.extensions["sender_quota"]``
    (set by the feature that knows the senders, if any).
    """
    broker = current_broker()
    quota: SenderQuota | None = current_app.extensions.get("sender_quota")
    if sender is not None and quota is not None:
        quota.take(sender, message_size(message))
    try:
        if room is None:
            await broker.publish(message)
            return None
        text = room_text(room, message)
        check_frame_size(room, text, sender, current_app.config["MAX_MESSAGE_SIZE"])
        return await broker.publish_to_room(room, text, sender)
    except BroadcastUnavailable:
        current_app.extensions["publish_failures"].inc()
        raise


def message_size(message: Message) -> int:
    """Bytes of ``message``, text counted as UTF-8."""
    if isinstance(message, bytes) or message.isascii():
        return len(message)
    return len(message.encode())


def room_text(room: str, message: Message) -> str:
    """``message`` if it may go to ``room``; ``ValueError`` if not."""
    problem = check_room_name(room)
    if problem is not None:
        raise ValueError(problem)
    if not isinstance(message, str):
        raise ValueError("room messages are text")
    return message


def collect_websocket(handler: Handler) -> Handler:
    """Give a websocket handler its own bounded queue of broadcast messages.

    The handler is called with the queue as first argument. If the client
    stops reading and the queue fills, the queue is emptied and the socket
    closed with 1013 (try again later): one slow client cannot hold up the
    others or grow the server's memory. The handler's next send then raises
    ``SocketClosed``, which ends it quietly.
    """

    @wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> None:
        hub = current_broker().hub
        subscriber = QueueSubscriber(EVERYONE, current_socket(), hub.queue_size)
        with hub.subscribe(subscriber):
            await handler(subscriber.queue, *args, **kwargs)

    return wrapper
