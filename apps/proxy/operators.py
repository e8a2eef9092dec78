"""Who may read operators' detail (``/health``'s per-dependency checks): the EDGE_HEALTH_TOKEN bearer,
or a logged-in staff user of admin.

API paths run without session middleware (it costs most of a fast request: see
``edge_project.api_handler``), so the admin session is read here, on this view alone, and only when
the request carries the session cookie: no ``/v1/`` request pays for it.
"""

from __future__ import annotations

import logging
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from edge_project.db import DatabaseUnavailable, run_bounded

logger = logging.getLogger(__name__)


async def is_operator(request: HttpRequest) -> bool:
    if has_operator_token(request):
        return True
    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    try:
        return await run_bounded(lambda: is_staff_session(session_key))
    except DatabaseUnavailable:
        return False  # the detail can wait; the bare status cannot
    except Exception:  # a session this release cannot read, say: no detail, and no 500 either
        logger.warning("could not read the session on /health; detail withheld", exc_info=True)
        return False


def has_operator_token(request: HttpRequest) -> bool:
    token: str = settings.EDGE_HEALTH_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and constant_time_compare(given.strip(), token)


def is_staff_session(session_key: str) -> bool:
    """The session is an active staff user's, as ``django.contrib.auth.get_user`` would verify it (its
    password hash included), but read only: a stale session is left for admin to end."""
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    backend_path = session.get(BACKEND_SESSION_KEY)
    if backend_path not in settings.AUTHENTICATION_BACKENDS or SESSION_KEY not in session:
        return False
    user = load_backend(backend_path).get_user(get_user_model()._meta.pk.to_python(session[SESSION_KEY]))
    if user is None or not (user.is_active and getattr(user, "is_staff", False)):
        return False
    given = session.get(HASH_SESSION_KEY) or ""
    expected = (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    return any(constant_time_compare(given, hash_) for hash_ in expected)
