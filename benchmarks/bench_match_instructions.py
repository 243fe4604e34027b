"""Instructions per `llmaudit.providers.match` call, the endpoint decision every request through an
audit transport pays on the caller's thread, counted by valgrind's callgrind for a few URL shapes.

    .venv/bin/python benchmarks/bench_match_instructions.py [--src OTHER/src] [--calls 20000]

For each URL it runs this file under callgrind with no call and with ``--calls`` calls (the branch's
own ``Headers`` of 16 fields, as the openai SDK sends about that many) and prints the difference per
call. ``--src`` counts another source tree too (``PYTHONPATH``), for a before/after comparison; a tree
whose ``match`` takes only ``(host, path)`` is called that way. Needs valgrind; about a minute a URL.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import re
import subprocess
import sys

URLS = (
    "https://api.openai.com/v1/chat/completions",
    "https://api.anthropic.com/v1/messages",
    "http://127.0.0.1:8000/v1/chat/completions",
    "http://127.0.0.1:8765/chat/completions",
    "https://llm.corp.example/v1/messages",
    "https://example.com/api/users/42",
)


def run(url: str, calls: int) -> None:
    """The run under valgrind: *calls* matches of *url*."""
    import httpx2  # noqa: PLC0415 - imported by the run, with the PYTHONPATH it was given

    from llmaudit import providers  # noqa: PLC0415

    fields = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
    headers = httpx2.Headers({**fields, **{f"x-stainless-{i}": "v" for i in range(14)}})
    parsed = httpx2.URL(url)
    host, path, match = parsed.host, parsed.path, providers.match
    gc.collect()
    gc.freeze()
    if "routes" in inspect.signature(match).parameters:
        for _ in range(calls):
            match(host, path, headers, method="POST", routes=None)
    else:  # the matcher before issue 17
        for _ in range(calls):
            match(host, path)


def count(src: str | None, url: str, calls: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if src is not None:
        env["PYTHONPATH"] = src
    result = subprocess.run(
        [*command, "--run", url, str(calls)], capture_output=True, text=True, check=False, env=env
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode or found is None:
        raise SystemExit(f"valgrind run failed:\n{result.stderr[-3000:]}")
    return int(found.group(1))


def per_call(src: str | None, url: str, calls: int) -> int:
    return (count(src, url, calls) - count(src, url, 0)) // calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--src", help="another source tree to count, for comparison")
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.run[0], int(args.run[1]))
        return
    print("| URL | this tree |" + (" other tree |" if args.src else ""))
    print("|---|---:|" + ("---:|" if args.src else ""))
    for url in URLS:
        row = f"| {url} | {per_call(None, url, args.calls):,} |"
        if args.src:
            row += f" {per_call(args.src, url, args.calls):,} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
