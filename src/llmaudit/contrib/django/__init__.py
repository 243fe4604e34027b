"""llmaudit as a Django app: ``INSTALLED_APPS += ["llmaudit.contrib.django"]``.

``manage.py migrate`` creates llmaudit's records table (and its schema, chain and registry tables)
in the project's database through llmaudit's own schema code; `models.LLMRequest` is an unmanaged,
read-only model over it; the admin browses it read-only ("LLM request history"); ``manage.py
llmaudit ...`` is the command line on the same store; ``manage.py check`` says what is missing.
Settings go in one dict, ``LLMAUDIT = {...}``, mapped onto `llmaudit.configure` (see `conf`). The
writer stays llmaudit's (background, batched, spooled, hash-chained): the ORM only reads. The session
middleware is ``llmaudit.web.django.SessionMiddleware`` (also importable as
``llmaudit.contrib.django.middleware.SessionMiddleware``).

Nothing is imported here but Django itself, so that naming the app in ``INSTALLED_APPS`` loads no
model before Django is ready.
"""

try:
    import django  # noqa: F401 - the gate: this app is nothing without it
except ImportError as exc:  # pragma: no cover - exercised by the optional-dependency test
    raise ImportError("llmaudit.contrib.django needs Django: pip install 'llmaudit-sdk[django]'") from exc
