"""The README's local serving set-up as a context: `launch.serve` workers over one model and
PyPI's sglang-router in front of them, on loopback, for tests and benchmarks; and the small HTTP
helpers that wait for them."""

import contextlib
import json
import pathlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]
_ONE_TOKEN = {"input_ids": [1], "sampling_params": {"max_new_tokens": 1}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url, path, body=None, timeout=120):
    """(status, decoded JSON or text) of a GET (no body) or a JSON POST."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    else:
        status = resp.status
    return status, (json.loads(raw) if raw.startswith((b"{", b"[")) else raw.decode())


def wait_until_served(url, path, proc, seconds=180, body=None):
    """Until `url + path` answers 200 (a GET, or a POST of `body`); RuntimeError if `proc`
    exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if http_json(url, path, body, timeout=30)[0] == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url}{path} never answered (exit {proc.poll()})")
        time.sleep(0.3)


@contextlib.contextmanager
def router_over_workers(model_dir, workers: int = 2, serve_args: Sequence[str] = (),
                        router_args: Sequence[str] = ()) -> Iterator[tuple[str, list[str]]]:
    """(router URL, worker URLs), once the router generates through its workers; every
    process is killed on the way out."""
    procs, urls = [], []
    try:
        for _ in range(workers):
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "launch.serve", f"--model_dir={model_dir}",
                 f"--port={port}", *serve_args], cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs):
            wait_until_served(url, "/model_info", proc)
        port = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "sglang_router.launch_router", "--host", "127.0.0.1",
             "--port", str(port), *router_args, "--worker-urls", *urls], cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        router = f"http://127.0.0.1:{port}"
        # The router answers /health before it has registered its workers (seconds later).
        wait_until_served(router, "/generate", procs[-1], body=_ONE_TOKEN)
        yield router, urls
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
