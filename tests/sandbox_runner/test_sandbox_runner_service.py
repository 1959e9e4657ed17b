"""HTTP service and client (spreading, dead endpoints, backpressure, auth), CLI and doctor."""

import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from sandbox_runner.client import Backpressure, Client, NoLiveEndpoint
from sandbox_runner.contracts import ExecRequest, Limits
from sandbox_runner.pool import Pool
from sandbox_runner.sandbox import Sandbox
from sandbox_runner.serve import make_server

LIMITS = Limits(wall_s=20, memory_bytes=512 << 20, max_processes=64, workspace_bytes=64 << 20)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox()


@pytest.fixture
def serve(sandbox):
    """Starts services; yields a factory returning (url, pool); stops them afterwards."""
    started = []

    def start(workers=1, queue_size=None, token=None, root=None):
        pool = Pool(sandbox, workers, queue_size)
        server = make_server(pool, token=token, root=root)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append((server, pool))
        return f"http://127.0.0.1:{server.server_address[1]}", pool

    yield start
    for server, pool in started:
        server.shutdown()
        server.server_close()
        pool.close()


def _dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}"


def test_run_health_and_stats_over_http(serve, tmp_path):
    url, _ = serve()
    client = Client(url)
    result = client.run(ExecRequest(workdir=str(tmp_path), code="print(6 * 7)", limits=LIMITS))
    assert result.stdout_tail == "42\n" and result.exit_code == 0
    assert client.health()[url]["ok"] is True
    assert client.stats(url)["completed"] == 1


def test_client_spreads_work_and_skips_a_dead_endpoint(serve, tmp_path):
    (url_a, pool_a), (url_b, pool_b) = serve(), serve()
    client = Client([url_a, _dead_url(), url_b])
    for _ in range(6):
        req = ExecRequest(workdir=str(tmp_path), code="print(1)", limits=LIMITS)
        assert client.run(req).exit_code == 0
    assert pool_a.snapshot()["completed"] >= 2 and pool_b.snapshot()["completed"] >= 2
    with pytest.raises(NoLiveEndpoint, match="no endpoint answered"):
        Client([_dead_url()]).run(ExecRequest(workdir=str(tmp_path), code="print(1)"))


def test_saturated_service_answers_429_and_the_client_surfaces_it(serve, tmp_path):
    url, pool = serve(workers=1, queue_size=1)
    slow = ExecRequest(workdir=str(tmp_path), code="import time; time.sleep(3)", limits=LIMITS)
    blockers = [threading.Thread(target=Client(url).run, args=(slow,)) for _ in range(2)]
    for thread in blockers:
        thread.start()
        time.sleep(0.3)
    with pytest.raises(Backpressure, match="saturated") as info:
        Client(url, max_wait_s=0).run(ExecRequest(workdir=str(tmp_path), code="print(1)"))
    assert info.value.retry_after_s >= 1
    waited = Client(url, max_wait_s=30).run(ExecRequest(workdir=str(tmp_path), code="print(1)"))
    assert waited.stdout_tail == "1\n"  # with patience the client waits out the backpressure
    for thread in blockers:
        thread.join()
    assert pool.snapshot()["rejected"] >= 1


def test_token_and_root_are_enforced(serve, tmp_path):
    (tmp_path / "inside").mkdir()
    url, _ = serve(token="s3cret", root=str(tmp_path / "inside"))
    req = ExecRequest(workdir=str(tmp_path / "inside"), code="print(1)", limits=LIMITS)
    with pytest.raises(PermissionError, match="Bearer"):
        Client(url).run(req)
    assert Client(url, token="s3cret").run(req).stdout_tail == "1\n"
    outside = ExecRequest(workdir=str(tmp_path), code="print(1)")
    with pytest.raises(ValueError, match="outside the service root"):
        Client(url, token="s3cret").run(outside)


def test_malformed_request_is_a_400_naming_the_problem(serve, tmp_path):
    url, _ = serve()
    client = Client(url)
    code, body, _ = client._call(url, "POST", "/run", {"workdir": str(tmp_path), "cmd": ["ls"]}, 5)
    assert code == 400 and "unknown fields ['cmd']" in body["error"]


def test_serve_refuses_a_public_address_without_a_token():
    done = subprocess.run([sys.executable, "-m", "sandbox_runner.serve", "--host=0.0.0.0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs --token" in done.stderr


def test_cli_runs_one_command_and_prints_json(tmp_path):
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "train.csv").write_text("a,b\n")
    done = subprocess.run([sys.executable, "-m", "sandbox_runner.run",
                           f"--public={tmp_path / 'public'}",
                           f"--workspace={tmp_path / 'ws'}", "--wall-s=10", "--", "python", "-c",
                           f"print(open('{tmp_path / 'public' / 'train.csv'}').read())"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["stdout_tail"] == "a,b\n\n" and result["exit_code"] == 0


def test_doctor_reports_backends_choice_and_limits():
    done = subprocess.run([sys.executable, "-m", "sandbox_runner.doctor"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for needle in ("backends, best first", "bwrap", "unshare", "rlimits", "WOULD USE:",
                   "max_processes"):
        assert needle in done.stdout
    data = json.loads(subprocess.run([sys.executable, "-m", "sandbox_runner.doctor", "--json"],
                                     capture_output=True, text=True, timeout=120).stdout)
    assert data["chosen"] in data["backends"]
    assert set(data["enforcement"]) == set(Limits().to_dict())


def test_serve_command_serves_until_interrupted(tmp_path):
    # Started with SIGINT ignored, as a background job of a script is: it must still stop.
    server = subprocess.Popen([sys.executable, "-m", "sandbox_runner.serve", "--port=0",
                               "--workers=1", "--token=t0k", f"--root={tmp_path}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        banner = server.stdout.readline()
        assert "serving on http://127.0.0.1:" in banner, server.stderr.read()
        url = banner.split()[3]
        client = Client(url, token="t0k")
        assert client.health()[url]["ok"] is True
        req = ExecRequest(workdir=str(tmp_path), code="print('served')", limits=LIMITS)
        assert client.run(req).stdout_tail == "served\n"
    finally:
        server.send_signal(2)  # SIGINT: the pool is closed and the process exits
        assert server.wait(timeout=30) == 0
