"""llmaudit as a Django app, on a real database: ``migrate`` makes llmaudit's tables (from empty, and
back to zero), a view's openai call is readable through the ORM and in the admin, the ORM cannot
write, ``manage.py llmaudit`` is the command line, and the system checks fire."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client, override_settings
from django.test.testcases import LiveServerThread
from django.urls import reverse
from sqlalchemy.engine import make_url

import llmaudit
from llmaudit import AuditRecord, ConfigurationError
from llmaudit.contrib.django.conf import DatabaseStorage, database_url, storage_url, table_name
from llmaudit.contrib.django.models import LLMRequest, ReadOnlyError

# private: the backend classes, built directly to inspect or tamper with their tables and files
from llmaudit.storage.sql import SQLStorage
from llmaudit.web.django import session_key_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
MANAGE = REPO / "integrations" / "django_app" / "manage.py"


def _tables() -> set[str]:
    with connection.cursor() as cursor:
        return {t for t in connection.introspection.table_names(cursor) if t.startswith(table_name())}


def _schema_version() -> int | None:
    store = SQLStorage(storage_url(), create=False)
    try:
        return store.schema_version()
    finally:
        store.close()


def _llmaudit_creates_its_store() -> None:
    """What a writer does on its first write to a database without the tables, in a process of its
    own (in this one, creating a SQLite store would drop the locks of Django's connections: see
    `llmaudit.contrib.django.conf.open_sql_store`)."""
    code = "import sys; from llmaudit.storage.sql import SQLStorage; SQLStorage(sys.argv[1]).close()"
    done = subprocess.run(
        [sys.executable, "-c", code, storage_url()],
        env=_child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``llmaudit`` command line itself, on the store, in a fresh process."""
    env = _child_env()
    return subprocess.run(
        [sys.executable, "-m", "llmaudit.cli", "-s", storage_url(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py ARGS`` of the test project, on the suite's test database, in a fresh process."""
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        capture_output=True,
        text=True,
        env=_child_env(DJANGO_APP_DB_NAME=str(settings.DATABASES["default"]["NAME"])),
        timeout=120,
        check=False,
    )


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMAUDIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    env["LLMAUDIT_CHAIN_KEY"] = "test-only-chain-key"  # the CLI run by hand needs the key as manage.py has it
    return {**env, **extra}


def _record(**fields: Any) -> AuditRecord:
    fields.setdefault("created_at", datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc))
    return AuditRecord(source=fields.pop("source", "transport"), **fields)


def _submit(*records: AuditRecord) -> None:
    auditor = llmaudit.get_auditor()
    for record in records:
        auditor.submit(record)
    assert llmaudit.flush(30)


@pytest.fixture
def staff() -> Client:
    name = f"staff-{uuid.uuid4().hex[:8]}"
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_llmrequest"))
    client = Client()
    client.force_login(user)
    client.username = name  # type: ignore[attr-defined]
    return client


# -- migrate -------------------------------------------------------------------------------------


def test_migrate_from_empty_made_llmaudits_tables_at_the_version_db_upgrade_reports() -> None:
    """The suite's test database was made by ``migrate`` from empty: llmaudit's four tables are
    there, and ``llmaudit db upgrade`` finds nothing to do (the same schema version)."""
    assert _tables() == {table_name() + s for s in ("", "_meta", "_chain", "_registry", "_checkpoints")}
    version = _schema_version()
    upgraded = _cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip().endswith(f"schema version {version}")
    assert _schema_version() == version


def test_migrate_backwards_removes_the_tables_and_either_may_create_them_first() -> None:
    """``migrate llmaudit zero`` drops llmaudit's tables; llmaudit creating them first (a writer
    that wrote before ``migrate`` ran) and ``migrate`` afterwards agree on the schema version."""
    version = _schema_version()
    llmaudit.shutdown()
    call_command("migrate", "llmaudit", "zero", verbosity=0)
    try:
        assert _tables() == set()
        _llmaudit_creates_its_store()  # llmaudit first
        assert _schema_version() == version
        call_command("migrate", "llmaudit", verbosity=0)  # then migrate: nothing to redo, no error
        assert _schema_version() == version
        call_command("migrate", "llmaudit", "zero", verbosity=0)
        assert _tables() == set()
    finally:
        call_command("migrate", "llmaudit", verbosity=0)
    assert _schema_version() == version
    assert len(_tables()) == 5


# -- a view's call, through the ORM and the admin ------------------------------------------------


def test_a_views_openai_call_is_read_through_the_orm_and_the_admin(staff: Client) -> None:
    """The view calls the real openai SDK; the middleware binds the Django session and user; the
    record is in the ORM once flushed, listed in the admin, and its page shows the conversation as
    escaped messages, the JSON below it."""
    question = f"<script>alert('{uuid.uuid4().hex[:6]}')</script> & more"
    answer = staff.get("/ask", {"q": question})
    assert answer.status_code == 200
    assert llmaudit.flush(30)
    key = session_key_for(staff.session.session_key)
    record = LLMRequest.objects.for_session(key).get()
    assert record.user == staff.username  # type: ignore[attr-defined]
    assert (record.provider, record.operation, record.model) == (
        "openai",
        "chat.completions",
        "gpt-4o-mini-2024-07-18",
    )
    assert (record.status_code, record.input_tokens, record.output_tokens) == (200, 12, 9)
    assert record.request["messages"][-1]["content"] == question
    assert record.response["choices"][0]["message"]["content"] == f"You asked: {question}"
    assert record.created_at.tzinfo is not None and record.updated_at == record.created_at
    assert record.is_aggregation is False and record.kind == "call"

    listing = staff.get(reverse("admin:llmaudit_llmrequest_changelist"), {"q": key})
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "LLM request history" in page and key in page and record.model in page
    assert reverse("admin:llmaudit_llmrequest_change", args=[record.pk]) in page

    detail = staff.get(reverse("admin:llmaudit_llmrequest_change", args=[record.pk]))
    assert detail.status_code == 200
    html = detail.content.decode()
    assert question not in html  # never as markup
    escaped = question.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;")
    assert f'<div class="llmaudit-role">user</div><div class="llmaudit-text">{escaped}</div>' in html
    assert (
        f'<div class="llmaudit-role">assistant</div><div class="llmaudit-text">You asked: {escaped}' in html
    )
    assert html.index("llmaudit-conversation") < html.index("llmaudit-json")  # the JSON below
    assert 'name="_save"' not in html  # read-only: no save button

    session = staff.get(reverse("admin:llmaudit_llmrequest_session", args=[key]))
    assert session.status_code == 200
    assert f"You asked: {escaped}" in session.content.decode()


def test_the_admin_refuses_adding_changing_and_deleting(staff: Client) -> None:
    """No add page, no delete page, no change form, for a superuser either."""
    User.objects.create_superuser(f"root-{uuid.uuid4().hex[:6]}", password="pw")
    root = Client()
    root.force_login(User.objects.filter(is_superuser=True).latest("date_joined"))
    _submit(_record(client="adminless", session_key=f"s-{uuid.uuid4().hex}"))
    record = LLMRequest.objects.filter(client="adminless").first()
    assert root.get(reverse("admin:llmaudit_llmrequest_add")).status_code == 403
    assert root.get(reverse("admin:llmaudit_llmrequest_delete", args=[record.pk])).status_code == 403
    changed = root.post(reverse("admin:llmaudit_llmrequest_change", args=[record.pk]), {"client": "x"})
    assert changed.status_code == 403
    assert LLMRequest.objects.get(pk=record.pk).client == "adminless"


def test_the_verify_and_forget_actions(staff: Client) -> None:
    """ "Verify selected" reports the chain; "Forget selected sessions" is offered only with the
    forget permission, erases the sessions' payloads through llmaudit, and the log still verifies."""
    key = f"forget-me-{uuid.uuid4().hex[:8]}"
    _submit(*(_record(session_key=key, client="forgettable", request={"secret": "pii"}) for _ in range(2)))
    ids = list(LLMRequest.objects.for_session(key).values_list("id", flat=True))
    url = reverse("admin:llmaudit_llmrequest_changelist")

    verified = staff.post(url, {"action": "verify_selected", "_selected_action": ids}, follow=True)
    assert "2 selected records verify, and so does the whole log" in verified.content.decode()

    listing = staff.get(url).content.decode()
    assert 'value="verify_selected"' in listing and 'value="forget_selected_sessions"' not in listing
    refused = staff.post(url, {"action": "forget_selected_sessions", "_selected_action": ids}, follow=True)
    assert "No action selected" in refused.content.decode()
    assert LLMRequest.objects.for_session(key).count() == 2  # nothing erased

    user = User.objects.get(username=staff.username)  # type: ignore[attr-defined]
    user.user_permissions.add(Permission.objects.get(codename="forget_llmrequest"))
    forgot = staff.post(url, {"action": "forget_selected_sessions", "_selected_action": ids}, follow=True)
    assert "Erased 2 records of 1 sessions" in forgot.content.decode()
    erased = list(LLMRequest.objects.filter(pk__in=ids))
    assert all(r.session_key != key and "pii" not in json.dumps(r.request) for r in erased)
    again = staff.post(url, {"action": "verify_selected", "_selected_action": ids}, follow=True)
    assert "2 selected records verify" in again.content.decode()


# -- the ORM: reads, summaries, no writes ---------------------------------------------------------


def test_orm_writes_are_refused() -> None:
    _submit(_record(client="immutable"))
    record = LLMRequest.objects.filter(client="immutable").first()
    attempts = [
        record.save,
        record.delete,
        lambda: LLMRequest.objects.filter(pk=record.pk).update(client="x"),
        lambda: LLMRequest.objects.filter(pk=record.pk).delete(),
        lambda: LLMRequest.objects.bulk_create([LLMRequest(id="x", created_at=record.created_at)]),
        lambda: LLMRequest.objects.create(id="y", created_at=record.created_at),
        lambda: LLMRequest.objects.get_or_create(id="z", defaults={"created_at": record.created_at}),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyError, match="append-only audit log"):
            attempt()
    assert LLMRequest.objects.filter(client="immutable").count() == 1
    assert LLMRequest.objects.get(pk=record.pk).client == "immutable"


def test_queryset_helpers_and_stats_give_llmaudits_numbers() -> None:
    """``.stats()`` gives exactly the rows of ``llmaudit.open(url).stats()`` (whatever the database
    computes natively there), over the whole log and over a filtered queryset."""
    key = f"stats-{uuid.uuid4().hex[:8]}"
    start = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    _submit(
        *(
            _record(
                session_key=key,
                client=("bot-a", "bot-b")[i % 2],
                model=("m1", "m2", "m3")[i % 3],
                provider="openai",
                input_tokens=i * 7,
                output_tokens=i * 3,
                cost_usd=0.001 * i if i % 4 else None,
                duration_ms=10.0 + (i * 37) % 101,
                status_code=500 if i % 5 == 0 else 200,
                created_at=start + timedelta(hours=i * 5),
            )
            for i in range(1, 25)
        ),
        _record(session_key=key, client="bot-a", error="Timeout: read", duration_ms=3000.0),
        _record(session_key=key, client="bot-a", source="decorator", duration_ms=999.0),
        _record(session_key=key, client="bot-a", source="aggregate", is_aggregation=True, input_tokens=99),
    )
    mine = LLMRequest.objects.for_session(key)
    assert mine.count() == 27
    assert mine.errors().count() == 5
    assert mine.aggregations().count() == 1 and mine.calls().count() == 25
    with llmaudit.open(storage_url()) as log:
        for by in (("client", "model"), ("model",), ("day",), ()):
            assert LLMRequest.objects.stats(by=by) == log.stats(by=by)
            assert mine.stats(by=by) == log.stats(by=by, session=key)
        assert mine.stats(by="client", kind="function") == log.stats(
            by=("client",), kind="function", session=key
        )
        assert mine.stats(by="client", include_aggregations=True) == log.stats(
            by=("client",), include_aggregations=True, session=key
        )
        assert mine.sessions() == log.sessions(session=key)


def test_the_storage_is_the_projects_database_named_as_sqlstorage_names_it() -> None:
    """The writer's store is the default database (its spool named after the same URL as the
    command line's reader uses, so ``forget`` finds spooled records)."""
    auditor = llmaudit.get_auditor()
    assert isinstance(auditor.storage, DatabaseStorage)
    store = SQLStorage(storage_url(), create=False)
    try:
        assert auditor.storage.url == store.url
    finally:
        store.close()


# -- manage.py llmaudit ---------------------------------------------------------------------------


def test_manage_py_llmaudit_prints_what_the_command_line_prints_with_its_exit_status() -> None:
    key = f"cmd-{uuid.uuid4().hex[:8]}"
    _submit(_record(session_key=key, client="cmd-bot", model="m", input_tokens=5, duration_ms=12.5))
    record_id = LLMRequest.objects.for_session(key).get().id
    llmaudit.shutdown()
    commands = [("stats", "--json"), ("show", record_id, "--json"), ("verify",)]
    if connection.vendor == "sqlite":  # the rest does not depend on the database: run once
        commands += [("show", "0000-not-a-record"), ("forget",), ("no-such-command",)]
    for args in commands:
        managed, direct = _manage("llmaudit", *args), _cli(*args)
        assert (managed.returncode, managed.stdout, managed.stderr) == (
            direct.returncode,
            direct.stdout,
            direct.stderr,
        ), args
        if args == ("verify",):
            assert managed.returncode == 0 and managed.stdout.startswith("OK: "), managed.stdout
        if args == ("forget",):
            assert managed.returncode == 1


def test_call_command_writes_to_its_stdout_and_raises_on_failure() -> None:
    out = io.StringIO()
    call_command("llmaudit", "stats", "--json", stdout=out)
    assert out.getvalue() == _cli("stats", "--json").stdout
    with pytest.raises(CommandError) as failed:
        call_command("llmaudit", "forget", stdout=io.StringIO(), stderr=io.StringIO())
    assert failed.value.returncode == 1


# -- system checks --------------------------------------------------------------------------------


def _ids(**kwargs: Any) -> set[str]:
    return {m.id for m in checks.run_checks(**kwargs) if m.id and m.id.startswith("llmaudit.")}


def test_system_checks_fire() -> None:
    assert _ids(databases=["default"]) == set()
    without = [m for m in settings.MIDDLEWARE if "llmaudit" not in m]
    with override_settings(MIDDLEWARE=without):
        assert _ids() == {"llmaudit.E001"}
    with override_settings(MIDDLEWARE=[*without, "llmaudit.contrib.django.middleware.SessionMiddleware"]):
        assert _ids() == set()
    with override_settings(LLMAUDIT={}):
        assert _ids() == {"llmaudit.W003"}
        with override_settings(DEBUG=True):
            assert _ids() == set()
    with override_settings(LLMAUDIT={"CHAIN_KEY": "k", "NO_SUCH_SETTING": 1}):
        assert _ids() == {"llmaudit.E004"}
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
    with override_settings(LLMAUDIT={"CHAIN_KEY": "k", "STORAGE": unreachable}):
        assert _ids() == set()  # the store is a database check: only when databases are checked
        found = [m for m in checks.run_checks(databases=["default"]) if m.id == "llmaudit.E002"]
        assert len(found) == 1 and "cannot open its store" in found[0].msg
    printed = _manage("check", "--database", "default")
    assert printed.returncode == 0, printed.stderr


def test_manage_py_check_names_the_missing_middleware(tmp_path: Path) -> None:
    settings_file = tmp_path / "nomiddleware.py"
    settings_file.write_text(
        "from integrations.django_app.project.settings import *  # noqa: F403\n"
        "MIDDLEWARE = [m for m in MIDDLEWARE if 'llmaudit' not in m]  # noqa: F405\n"
    )
    env = _child_env(
        DJANGO_APP_DB_NAME=str(settings.DATABASES["default"]["NAME"]),
        DJANGO_SETTINGS_MODULE="nomiddleware",
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO), str(tmp_path)]),
    )
    done = subprocess.run(
        [sys.executable, str(MANAGE), "check"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "(llmaudit.E001)" in done.stderr and "SessionMiddleware" in done.stderr


def test_every_record_field_is_a_model_field() -> None:
    """The unmanaged model maps every column of llmaudit's table (one per record field)."""
    # private: the codec's list of record fields, the columns the model must map
    from llmaudit.record.codec import FIELDS

    columns = {f.column for f in LLMRequest._meta.concrete_fields}
    assert columns == set(FIELDS)


# -- the admin in a browser -----------------------------------------------------------------------


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    return path


@pytest.fixture
def live_server() -> Iterator[str]:
    """The test project served by Django's live server thread (static files included)."""
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.terminate()
        server.join(10)


def test_the_admin_pages_load_in_headless_chromium(live_server: str) -> None:
    """A staff user logs in, finds the record of their view's call in the list, opens it and reads
    the conversation as messages; the recorded ``<script>`` stays text (no dialog ever opens)."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    name = f"browser-{uuid.uuid4().hex[:8]}"
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_llmrequest"))
    marker = uuid.uuid4().hex[:8]
    question = f"<script>alert('{marker}')</script><img src=x onerror=alert('{marker}')>"
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        try:
            page = browser.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{live_server}/admin/login/?next=/admin/")
            page.fill("#id_username", name)
            page.fill("#id_password", "pw")
            page.click("input[type=submit]")
            page.wait_for_selector("#user-tools")
            page.goto(f"{live_server}/ask?q={quote(question)}")  # the browser's own session asks
            assert marker in page.inner_text("body")
            assert llmaudit.flush(30)
            page.goto(f"{live_server}/admin/llmaudit/llmrequest/?user={name}")
            assert "LLM request history" in page.inner_text("body")
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 1
            rows.first.locator("th a").click()
            page.wait_for_selector(".llmaudit-conversation")
            messages = page.locator(".llmaudit-message")
            assert messages.count() == 3  # system, user, assistant
            assert page.locator(".llmaudit-message .llmaudit-text").nth(1).inner_text() == question
            assert page.locator("pre.llmaudit-json").count() == 2
            assert page.locator(".llmaudit-text img").count() == 0
        finally:
            browser.close()
    assert dialogs == []


# -- the README's migration guide -----------------------------------------------------------------


class _Rows(list[Any]):
    """What the data migration asks of ``Old.objects``."""

    def select_related(self, *names: str) -> _Rows:
        return self

    def order_by(self, *names: str) -> _Rows:
        return _Rows(sorted(self, key=lambda r: (r.created_at, r.pk)))

    def iterator(self) -> Iterator[Any]:
        return iter(self)


def test_the_readmes_data_migration_copies_old_rows_into_the_log() -> None:
    """The README's ``copy`` (its code as written) turns rows of a hand-written request-history model
    into records: the client from the foreign key's name, ``is_aggregation`` kept; the log verifies."""
    text = (REPO / "README.md").read_text()
    start = text.index("# yourapp/migrations/00NN_copy_request_history_to_llmaudit.py")
    namespace: dict[str, Any] = {}
    exec(text[start : text.index("```", start)], namespace)
    client = f"legacy-bot-{uuid.uuid4().hex[:6]}"
    at = datetime(2025, 3, 1, 8, 30, tzinfo=timezone.utc)
    rows = _Rows(
        SimpleNamespace(
            pk=pk,
            created_at=at + timedelta(minutes=pk),
            llm_client=SimpleNamespace(name=client),
            session_key=f"old-session-{pk % 2}",
            request={"messages": [{"role": "user", "content": f"question {pk}"}]},
            is_aggregation=pk == 3,
        )
        for pk in (2, 1, 3)
    )
    apps = SimpleNamespace(get_model=lambda app, name: SimpleNamespace(objects=rows))
    namespace["copy"](apps, SimpleNamespace(connection=connection))
    copied = list(LLMRequest.objects.filter(client=client).order_by("created_at"))
    assert [r.request["messages"][0]["content"] for r in copied] == ["question 1", "question 2", "question 3"]
    assert [r.is_aggregation for r in copied] == [False, False, True]
    assert [r.created_at for r in copied] == [at + timedelta(minutes=m) for m in (1, 2, 3)]
    assert copied[0].session_key == "old-session-1" and copied[0].metadata == {
        "copied_from": "yourapp.LLMClientRequestHistory:1"
    }
    out = io.StringIO()
    call_command("llmaudit", "verify", stdout=out)
    assert out.getvalue().startswith("OK: ")


def test_database_settings_become_storage_urls() -> None:
    """Each DATABASES engine becomes its llmaudit URL (credentials escaped, the table named); a
    database the writer cannot reach from its own connection is refused with the reason."""
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/app/db.sqlite3"}
    assert database_url(sqlite) == "sqlite:////srv/app/db.sqlite3?table=llmaudit_records"
    pg = database_url(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "app",
            "USER": "u",
            "PASSWORD": "p@ss/word",
            "HOST": "db.internal",
            "PORT": "5433",
            "OPTIONS": {"sslmode": "require"},
        }
    )
    parsed = make_url(pg)
    assert (parsed.drivername, parsed.username, parsed.password) == ("postgresql+psycopg", "u", "p@ss/word")
    assert (parsed.host, parsed.port, parsed.database) == ("db.internal", 5433, "app")
    assert dict(parsed.query) == {"sslmode": "require", "table": "llmaudit_records"}
    mysql = {"ENGINE": "django.db.backends.mysql", "NAME": "app", "USER": "root"}
    assert database_url(mysql) == "mysql+pymysql://root@localhost/app?table=llmaudit_records"
    with override_settings(LLMAUDIT={"TABLE": "audit_x"}):
        assert database_url(mysql).endswith("?table=audit_x")
    for name in (":memory:", "file:memorydb_default?mode=memory&cache=shared"):
        with pytest.raises(ConfigurationError, match="in memory"):
            database_url({"ENGINE": "django.db.backends.sqlite3", "NAME": name})
    with pytest.raises(ConfigurationError, match="oracle"):
        database_url({"ENGINE": "django.db.backends.oracle", "NAME": "x"})
