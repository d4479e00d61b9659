"""Logging in: where the app learns who a user is. Yours goes here.

The template cannot know your identity provider. Replace ``check_login``
with your own check (a password against your users table, OAuth with
Authlib, the SSO header your proxy sets), or write your own login route:
whatever it is, it ends with ``log_in(user_id)`` (``identity.py``), which
sets the signed session cookie that the websockets read, stamped with the
time, so that a logout can end it.

The demo login (``GET``/``POST /login``) takes any valid name, and exists
only under ``QUART_DEMO_LOGIN=1``: without it, ``/login`` answers 404.
"""

from __future__ import annotations

from quart import Blueprint, redirect, request
from quart.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from .identity import check_user_id, log_in

FORM = """<!doctype html>
<title>Log in</title>
<form method="post" action="/login">
  <label>Name <input name="name" pattern="[A-Za-z0-9._\\-]{1,64}" required autofocus></label>
  <button type="submit">Log in</button>
</form>
"""

demo_blueprint = Blueprint("demo_login", __name__)


async def check_login(form: MultiDict[str, str]) -> str | None:
    """The user id that this login form proves, or None to refuse it.

    The demo trusts the name it is given: replace this before you deploy.
    """
    name = form.get("name", "").strip()
    return name if check_user_id(name) is None else None


@demo_blueprint.get("/login")
async def login_form() -> ResponseReturnValue:
    return FORM


@demo_blueprint.post("/login")
async def login() -> ResponseReturnValue:
    """Log in as the form's ``name``, then back to the rooms page."""
    user = await check_login(await request.form)
    if user is None:
        return {"error": "log in with a name of 1-64 of A-Z a-z 0-9 . _ -"}, 400
    log_in(user)
    return redirect("/?channel=rooms", 303)
