"""What the transport knows about the requests it is unsure of: which provider mapping applies, and
the requests an explicitly attached transport passes through unrecorded, so that nothing is skipped
in silence.

Runs on the caller's thread: attribute reads and a dict lookup per request; a counter increment per
unrecorded request, and one log line for the first one to each host. It never parses and never
creates the default auditor just to find the mapping.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .. import providers
from .._errors import ConfigurationError
from .._guard import logger
from ..pipeline import auditor as _auditor
from ..pipeline.settings import Settings
from ..providers import Routes

__all__ = ["active_routes", "unmatched"]

_env_routes: list[tuple[str | None, Routes]] = [(None, Routes())]


def active_routes(auditor: _auditor.Auditor | _auditor.NullAuditor | None) -> Routes:
    """The provider mapping a transport applies: *auditor*'s, else the default auditor's, else,
    before the default exists, ``LLMAUDIT_PROVIDERS``'s (so that asking does not create the default
    auditor, and a process that never calls an LLM opens no store)."""
    if auditor is None:
        auditor = _auditor._default
        if auditor is None:
            return _routes_from_environment()
    return auditor.settings.providers


def _routes_from_environment() -> Routes:
    text = os.environ.get("LLMAUDIT_PROVIDERS")
    last = _env_routes[0]
    if last[0] == text:
        return last[1]
    try:
        routes = Settings.resolve(providers=None).providers
    except ConfigurationError:  # reported when the default auditor is created from it
        routes = Routes()
    _env_routes[0] = (text, routes)
    return routes


#: Hosts already warned about: a bounded memory, one warning per host.
_warned_hosts: set[str] = set()
_WARNED_HOSTS_LIMIT = 1024
_warn_lock = threading.Lock()


def unmatched(auditor: _auditor.Auditor | _auditor.NullAuditor, url: Any) -> None:
    """A request an explicitly attached transport does not record: counted in *auditor*'s stats,
    and the first one to each host logged with the settings that would record it."""
    auditor.count_unmatched()
    port = url.port
    host = url.host if port is None else f"{url.host}:{port}"
    if host in _warned_hosts:
        return
    with _warn_lock:
        if host in _warned_hosts or len(_warned_hosts) > _WARNED_HOSTS_LIMIT:
            return
        _warned_hosts.add(host)
        last = len(_warned_hosts) > _WARNED_HOSTS_LIMIT
    logger.warning(
        "llmaudit: an audit transport passed a request to %s through unrecorded: its path is no LLM "
        "API that llmaudit recognises. If that host serves one, name its provider: "
        "configure(providers={%r: 'openai'}) or LLMAUDIT_PROVIDERS=%s=openai (any of %s); or record "
        "every request with capture='all'. Such requests are counted in llmaudit.stats().unmatched; "
        "this is logged once per host%s.",
        host,
        host,
        host,
        ", ".join(providers.provider_names()),
        " (and no more hosts will be named)" if last else "",
    )
