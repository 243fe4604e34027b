"""Per-call cost of recording an aiohttp call: a plain ``aiohttp.ClientSession`` against an aiohttp
server on 127.0.0.1 (the real network stack, one event loop), with and without llmaudit's
``AuditMiddleware`` writing to an embedded SQLite store.

Variants, interleaved round by round so machine noise hits them alike:
  * baseline  — aiohttp.ClientSession()
  * llmaudit  — aiohttp.ClientSession(middlewares=[AuditMiddleware(auditor=...)]); each block of calls
                ends with auditor.flush(), so records are parsed and committed before the clock stops
for a JSON answer (``await response.json()``) and an SSE stream of 40 chunks read with ``iter_any()``.
Reports the median per-call time of each variant and the overhead against the same round's baseline.

    .venv/bin/python benchmarks/bench_aiohttp.py [--calls 200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from typing import Any

import aiohttp
from _results import record
from _wire import COMPLETION
from aiohttp import web

import llmaudit
from llmaudit.transports.aiohttp import AuditMiddleware

CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi "}}]}\n\n'
)
REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 1000}]}


async def _chat(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.Response(body=COMPLETION, content_type="application/json")
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for _ in range(40):
        await response.write(CHUNK)
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _block(session: aiohttp.ClientSession, url: str, calls: int, stream: bool) -> None:
    body = {**REQUEST, "stream": True} if stream else REQUEST
    for _ in range(calls):
        async with session.post(url, json=body) as r:
            if stream:
                async for _chunk in r.content.iter_any():
                    pass
            else:
                await r.json()


async def _run(calls: int, rounds: int) -> dict[str, Any]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", _chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/chat/completions"
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        auditor = llmaudit.Auditor(f"sqlite:///{tmp}/bench.db", spool_dir=f"{tmp}/spool")
        for stream in (False, True):
            times: dict[str, list[float]] = {"baseline": [], "llmaudit": []}
            for _ in range(rounds):
                for name, middlewares in (
                    ("baseline", ()),
                    ("llmaudit", (AuditMiddleware(auditor=auditor),)),
                ):
                    async with aiohttp.ClientSession(middlewares=middlewares) as session:
                        await _block(session, url, 5, stream)  # warm the connection
                        auditor.flush(30)
                        start = time.perf_counter()
                        await _block(session, url, calls, stream)
                        if middlewares:
                            auditor.flush(60)
                        times[name].append((time.perf_counter() - start) / calls * 1e6)
            base, audited = statistics.median(times["baseline"]), statistics.median(times["llmaudit"])
            results["stream" if stream else "json"] = (base, audited)
        auditor.close()
    await runner.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    results = asyncio.run(_run(args.calls, args.rounds))
    lines = [
        f"{args.calls} calls x {args.rounds} rounds, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}); "
        "each block ends with flush(), so the writer's work (SQLite) is inside the timed region; "
        "median per call. Re-run: `.venv/bin/python benchmarks/bench_aiohttp.py`.",
        "",
        "| answer | aiohttp | + AuditMiddleware | overhead |",
        "|---|---|---|---|",
    ]
    for name, (base, audited) in results.items():
        label = "JSON, 1 KB request" if name == "json" else "SSE, 40 chunks"
        lines.append(f"| {label} | {base:.0f} µs | {audited:.0f} µs | +{audited - base:.0f} µs |")
    text = "\n".join(lines)
    print(text)
    record("aiohttp", "aiohttp: AuditMiddleware per call (bench_aiohttp.py)", text)


if __name__ == "__main__":
    main()
