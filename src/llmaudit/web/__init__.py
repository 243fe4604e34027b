"""Web middlewares that bind each incoming request's session key, so every LLM call made while
handling it carries that key: ``llmaudit.web.asgi`` (Starlette, FastAPI, any ASGI app),
``llmaudit.web.wsgi`` (Flask, any WSGI app) and ``llmaudit.web.django`` (Django's own session key).

Where the key comes from, in order: the request header (``X-Session-Key`` unless configured), then the
framework's session (Django's ``request.session.session_key``; for ASGI and WSGI a ``key_resolver``),
else the request runs without a session. A header value that ``session()`` refuses (empty, too long)
is logged at WARNING and ignored: a bad header never breaks a request. Nothing here touches the
response.
"""
