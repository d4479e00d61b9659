"""Broadcast and rooms.

``broadcast(message)`` reaches every ``/ws/broadcast`` client;
``broadcast(text, room="lobby")`` every client of one room, and is kept in
that room's history for clients that resume. The broker (``broker.py``, one
backend beside it) carries messages between processes; the hub (``hub.py``)
fans them out to this process's clients, each through a bounded queue.
"""

from .api import broadcast, collect_websocket, init_broadcast
from .broker import BroadcastUnavailable
from .routes import blueprint

__all__ = ["BroadcastUnavailable", "blueprint", "broadcast", "collect_websocket", "init_broadcast"]
