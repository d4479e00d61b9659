"""Who is connected: a user at every handshake, messages to one user, presence.

``identity.py`` reads the user of a handshake (a session cookie or a ticket);
``login.py`` is where your own login goes; ``presence.py`` keeps who is in
each room; ``api.py`` has ``send_to_user`` and ``disconnect_user``;
``routes.py`` the inbox socket and the HTTP API.
"""

from .api import disconnect_user, init_users, require_secret_key, send_to_user
from .identity import current_tickets
from .routes import blueprint

__all__ = [
    "blueprint",
    "current_tickets",
    "disconnect_user",
    "init_users",
    "require_secret_key",
    "send_to_user",
]
