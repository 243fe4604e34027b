"""The load driver of the reliability suite: the real openai SDK, audited, against a local server.

    python -m tests.stress.loadgen --base-url http://127.0.0.1:PORT/v1 --storage URL --spool DIR \
        --mode background|sync|off --threads 8 --streams 500 --duration 20 --ack FILE --report FILE

``--threads`` threads make non-streaming calls in a loop while ``--streams`` asyncio tasks each keep
one stream open at a time, until ``--duration`` seconds have passed. Every call runs in its own
``llmaudit.session(key)`` and sends ``call <key>``; the caller checks that it got ``echo: call <key>``
back. Once the SDK has returned (a stream: once it is fully read), the key is appended to the ack
file with one ``write`` (so a SIGKILL never leaves half a line): those are the acknowledged calls a
crash test holds the storage to. The report (JSON) gives the latencies, the resident memory sampled
every half second, errors and the writer's counters. ``--mode off`` runs the same load without
llmaudit, for the side-by-side added latency.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import openai

import llmaudit

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.deadline = time.monotonic() + args.duration
        self.ack_fd = os.open(args.ack, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600) if args.ack else -1
        self.latency: dict[str, list[float]] = {"sync": [], "stream": []}
        self.errors: list[str] = []
        self.rss: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.started = time.monotonic()

    def ack(self, key: str) -> None:
        if self.ack_fd >= 0:
            os.write(self.ack_fd, f"{key} {time.time():.6f}\n".encode())

    def done(self, kind: str, key: str, text: str | None, began: float) -> None:
        elapsed = (time.perf_counter() - began) * 1000
        if text != f"echo: call {key}":
            with self.lock:
                self.errors.append(f"{key}: the caller got {text!r}")
            return
        self.ack(key)
        with self.lock:
            self.latency[kind].append(elapsed)

    def failed(self, key: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{key}: {type(exc).__name__}: {exc}")

    # -- the two kinds of caller ------------------------------------------------------------------

    def transport(self, inner: Any, asynchronous: bool) -> Any:
        if self.args.mode == "off":
            return inner
        return llmaudit.AsyncAuditTransport(inner) if asynchronous else llmaudit.AuditTransport(inner)

    def run_thread(self, client: openai.OpenAI, n: int) -> None:
        i = 0
        while time.monotonic() < self.deadline:
            key = f"{self.args.tag}-t{n}-{i}"
            i += 1
            began = time.perf_counter()
            try:
                with llmaudit.session(key):
                    reply = client.chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": f"call {key}"}]
                    )
                self.done("sync", key, reply.choices[0].message.content, began)
            except Exception as exc:
                self.failed(key, exc)

    async def run_stream(self, client: openai.AsyncOpenAI, n: int) -> None:
        i = 0
        while time.monotonic() < self.deadline:
            key = f"{self.args.tag}-a{n}-{i}"
            i += 1
            began = time.perf_counter()
            try:
                async with llmaudit.session(key):
                    stream = await client.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=[{"role": "user", "content": f"call {key}"}],
                        stream=True,
                    )
                    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
                self.done("stream", key, "".join(parts), began)
            except Exception as exc:
                self.failed(key, exc)

    def sample_memory(self) -> None:
        while time.monotonic() < self.deadline + 1:
            self.rss.append((time.monotonic() - self.started, rss_bytes()))
            time.sleep(0.5)

    async def main(self) -> None:
        args = self.args
        limits = httpx2.Limits(max_connections=args.streams + 50, max_keepalive_connections=args.streams + 50)
        sync_client = openai.OpenAI(
            base_url=args.base_url,
            api_key="sk-loadtest-FAKE-key-000000000000",
            max_retries=0,
            http_client=httpx2.Client(
                transport=self.transport(httpx2.HTTPTransport(limits=limits), False), timeout=120
            ),
        )
        async_client = openai.AsyncOpenAI(
            base_url=args.base_url,
            api_key="sk-loadtest-FAKE-key-000000000000",
            max_retries=0,
            http_client=httpx2.AsyncClient(
                transport=self.transport(httpx2.AsyncHTTPTransport(limits=limits), True), timeout=120
            ),
        )
        sampler = threading.Thread(target=self.sample_memory, daemon=True)
        sampler.start()
        threads = [
            threading.Thread(target=self.run_thread, args=(sync_client, n)) for n in range(args.threads)
        ]
        for thread in threads:
            thread.start()
        await asyncio.gather(*(self.run_stream(async_client, n) for n in range(args.streams)))
        for thread in threads:
            thread.join()
        sampler.join()
        await async_client.close()
        sync_client.close()


#: How long the streams' tasks get to finish their cancellation at exit, as an application server
#: bounds its graceful shutdown (uvicorn's ``--timeout-graceful-shutdown``). asyncio.run waits for them
#: without a bound, and once a task hung there after SIGTERM's SystemExit was raised at an arbitrary
#: bytecode of the event loop (seen on a loaded machine: the main thread in _cancel_all_tasks for
#: minutes, every other thread idle), which kept the process alive and not llmaudit's exit flush.
GRACEFUL_SHUTDOWN_S = 15.0


def _cancel_within(loop: asyncio.AbstractEventLoop, timeout: float) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=timeout))
    if not any(not task.done() for task in tasks):
        loop.close()  # else left open: closing it would destroy the pending tasks noisily


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--storage")
    parser.add_argument("--spool")
    parser.add_argument("--mode", choices=["background", "sync", "off"], default="background")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--tag", default="load")
    parser.add_argument("--ack")
    parser.add_argument("--report")
    args = parser.parse_args()
    if args.mode != "off":
        llmaudit.configure(storage=args.storage, mode=args.mode, spool_dir=args.spool)
    load = Load(args)
    print("STARTED", flush=True)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(load.main())
    finally:  # SIGTERM (SystemExit in the main thread) stops the threads too, as an application would
        load.deadline = 0
        _cancel_within(loop, GRACEFUL_SHUTDOWN_S)
    elapsed = time.monotonic() - load.started
    flushed = llmaudit.flush(timeout=120) if args.mode != "off" else True
    stats = dataclasses.asdict(llmaudit.stats()) if args.mode != "off" else {}
    if args.report:
        Path(args.report).write_text(
            json.dumps(
                {
                    "elapsed_s": elapsed,
                    "latency_ms": load.latency,
                    "errors": load.errors[:20],
                    "error_count": len(load.errors),
                    "rss": load.rss,
                    "flushed": flushed,
                    "stats": stats,
                }
            )
        )
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
