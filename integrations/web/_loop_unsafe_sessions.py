"""A Django session engine for the ASGI tests: Django's cache engine with its database engine's rule.

The database engine's queries raise ``SynchronousOnlyOperation`` when they run on an event loop's
thread (Django's ``async_unsafe``); the in-memory cache engine the tests use has no such rule, so code
that touches the session from the event loop would pass the tests and fail in production. This engine
puts the same ``async_unsafe`` guard on every operation that reaches the store.
"""

from __future__ import annotations

from django.contrib.sessions.backends import cache
from django.utils.asyncio import async_unsafe


class SessionStore(cache.SessionStore):
    load = async_unsafe(cache.SessionStore.load)
    create = async_unsafe(cache.SessionStore.create)
    save = async_unsafe(cache.SessionStore.save)
    exists = async_unsafe(cache.SessionStore.exists)
    delete = async_unsafe(cache.SessionStore.delete)
