"""Database connection hygiene for code that runs outside Django's request cycle."""

from __future__ import annotations

from django.db import connection


def release_connection() -> None:
    """Hand this thread's connection back to the pool (or close it).

    Django returns connections when a request finishes; executor threads and background threads
    never finish one, so each would keep its connection checked out for good and starve the pool.
    Inside an open transaction (a test's atomic block) closing would poison it, so it is left.
    """
    if not connection.in_atomic_block:
        connection.close()
