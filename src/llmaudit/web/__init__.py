"""Web middlewares that bind each incoming request's session key, so every LLM call made while
handling it carries that key: ``llmaudit.web.asgi`` (Starlette, FastAPI, any ASGI app),
``llmaudit.web.wsgi`` (Flask, any WSGI app) and ``llmaudit.web.django`` (Django's own session key).

Where the key comes from, in order: the request header (``X-Session-Key`` unless configured), then the
framework's session (Django's ``request.session.session_key``; for ASGI and WSGI a ``cookie`` or a
``key_resolver``), else the request runs without a session. A session id that is a credential (Django's
session key, a session cookie) is recorded as a keyed hash (``dj-<hex>``, ``sid-<hex>``), never as
itself, unless the application opts in. A header value that ``session()`` refuses (empty, too long)
is logged at WARNING and ignored: a bad header never breaks a request. A streamed body made after the
middleware returned is produced in the request's context. Nothing here touches the response, except
that the Django middleware saves a first visitor's session (and Django then sends its cookie).
"""
