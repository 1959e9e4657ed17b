"""Behaviour every backend must have: results, limits, cleanup, environment."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sandbox_runner import backends, executor
from sandbox_runner.contracts import ExecRequest, Isolation, Limits
from sandbox_runner.sandbox import Sandbox, SandboxUnavailable

FAST = Limits(wall_s=20, memory_bytes=512 << 20, max_processes=64, workspace_bytes=256 << 20)
_SANDBOXES: dict[str, Sandbox] = {}


@pytest.fixture(params=["bwrap", "unshare", "rlimits"])
def sandbox(request):
    name = request.param
    if name not in _SANDBOXES:
        reason = backends.REGISTRY[name].probe()
        if reason is not None:
            pytest.skip(f"backend {name} unavailable here: {reason}")
        with pytest.warns(UserWarning) if name == "rlimits" else _nothing():
            _SANDBOXES[name] = Sandbox(backend=name)
    return _SANDBOXES[name]


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def run(sandbox, workdir, code, **limits):
    return sandbox.run(ExecRequest(workdir=str(workdir), code=code,
                                   limits=Limits(**{**FAST.to_dict(), **limits})))


def test_stdout_stderr_exit_code_and_isolation_are_reported(sandbox, tmp_path):
    code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"
    result = run(sandbox, tmp_path, code)
    assert (result.exit_code, result.stdout_tail, result.stderr_tail) == (3, "out\n", "err\n")
    assert result.isolation == sandbox.isolation.name.lower()  # the level, as min_isolation
    assert result.killed_by is None and not result.timed_out
    assert any(e.startswith("wall_s=") for e in result.enforced)


def test_code_runs_as_a_fresh_process_in_the_workspace_which_persists(sandbox, tmp_path):
    code = "import os\nprint(os.getcwd())\nopen('state.txt','w').write('42')\nX=1"
    first = run(sandbox, tmp_path, code)
    assert first.stdout_tail.strip() == str(tmp_path)
    second = run(sandbox, tmp_path, "print(open('state.txt').read(), 'X' in globals())")
    assert second.stdout_tail.strip() == "42 False"


def test_argv_requests_run_commands(sandbox, tmp_path):
    result = sandbox.run(ExecRequest(workdir=str(tmp_path), argv=("sh", "-c", "echo $((6*7))"),
                                     limits=FAST))
    assert result.stdout_tail == "42\n"


def test_environment_is_cleared_and_thread_counts_follow_cpus(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("SANDBOX_RUNNER_HOST_SECRET", "hunter2")
    result = sandbox.run(ExecRequest(workdir=str(tmp_path), limits=Limits(cpus=3),
                                     env={"MINE": "yes"},
                                     code="import os; print(dict(os.environ))"))
    env = eval(result.stdout_tail)
    assert "SANDBOX_RUNNER_HOST_SECRET" not in env and env["MINE"] == "yes"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"


def test_wall_clock_sends_sigterm_then_sigkill_to_the_tree(sandbox, tmp_path):
    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: (print('term', flush=True), sys.exit(7)))\n"
            "subprocess.Popen(['sleep', '1000'])\n"
            "print('ready', flush=True)\ntime.sleep(1000)\n")
    start = time.monotonic()
    result = run(sandbox, tmp_path, code, wall_s=1.5)
    assert time.monotonic() - start < 6
    assert result.timed_out and result.killed_by == "wall_s"
    assert "ready" in result.stdout_tail and "term" in result.stdout_tail


def test_wall_clock_kills_a_program_that_ignores_sigterm(sandbox, tmp_path):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(1000)\n"
    result = run(sandbox, tmp_path, code, wall_s=1)
    assert result.timed_out and result.exit_code == -signal.SIGKILL and result.wall_s < 4


def test_nothing_outlives_the_main_process(sandbox, tmp_path):
    if sandbox.isolation == Isolation.RLIMITS and not sandbox.setup.controllers:
        pytest.skip("rlimits without cgroups cannot find a daemon that left the process group")
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        while True:\n            open('beat', 'a').write('x')\n"
            "            time.sleep(0.02)\n    os._exit(0)\ntime.sleep(0.3)\n")
    result = run(sandbox, tmp_path, code)
    assert result.exit_code == 0 and result.wall_s < 5
    size = (tmp_path / "beat").stat().st_size
    time.sleep(0.3)
    assert size > 0 and (tmp_path / "beat").stat().st_size == size


def test_cpu_limit_kills_a_spinning_program(sandbox, tmp_path):
    result = run(sandbox, tmp_path, "while True: pass", cpu_s=1, wall_s=10)
    assert result.killed_by == "cpu_s" and 0.7 <= result.cpu_s < 3
    assert result.exit_code in (-signal.SIGXCPU, -signal.SIGKILL)


def test_file_size_limit_stops_a_large_file(sandbox, tmp_path):
    code = "f = open('big', 'wb')\nfor _ in range(64): f.write(b'x' * (1 << 20))\n"
    result = run(sandbox, tmp_path, code, file_size_bytes=8 << 20)
    assert result.killed_by == "file_size_bytes" and result.exit_code != 0
    assert (tmp_path / "big").stat().st_size == 8 << 20


def test_open_files_limit_applies(sandbox, tmp_path):
    code = ("import resource\nprint(resource.getrlimit(resource.RLIMIT_NOFILE))\n"
            "fs = []\ntry:\n    while True: fs.append(open('/dev/null'))\n"
            "except OSError as e: print(e.errno)\n")
    result = run(sandbox, tmp_path, code, open_files=50)
    assert result.stdout_tail.split("\n")[:2] == ["(50, 50)", "24"]  # EMFILE


def test_peak_memory_and_cpu_time_are_measured(sandbox, tmp_path):
    code = ("import time\nb = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
            "t = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n")
    result = run(sandbox, tmp_path, code)
    assert result.exit_code == 0
    assert 200 << 20 <= result.peak_rss < 400 << 20
    assert 0.3 <= result.cpu_s < 2


def test_bad_workdir_is_a_clear_error(sandbox, tmp_path):
    with pytest.raises(ValueError, match="existing directory"):
        sandbox.run(ExecRequest(workdir=str(tmp_path / "missing"), code="print(1)"))


def test_min_isolation_above_what_a_backend_gives_fails_at_start_up():
    with pytest.raises(SandboxUnavailable, match="isolation >= bwrap"):
        Sandbox(backend="unshare", min_isolation=Isolation.BWRAP)


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown sandbox backend 'vm'"):
        Sandbox(backend="vm")


def test_no_isolation_warns_loudly():
    with pytest.warns(UserWarning, match="NO ISOLATION"):
        Sandbox(backend="rlimits")


def test_a_custom_interpreter_runs_code(tmp_path):
    sandbox = Sandbox(interpreter=sys.executable)
    code = "import sys; print(sys.executable)"
    result = sandbox.run(ExecRequest(workdir=str(tmp_path), code=code))
    assert result.stdout_tail.strip() == sys.executable


def test_an_interpreter_path_through_an_unmounted_folder_runs_code(tmp_path):
    """`../.venv/bin/python` run from tests/ is such a path: the sandbox does not mount
    tests/, so the path must be normalised before it is executed inside."""
    detour = tmp_path / "detour"
    detour.mkdir()
    interpreter = os.path.join(str(detour), os.path.relpath(sys.executable, str(detour)))
    assert ".." in interpreter
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = Sandbox(interpreter=interpreter).run(ExecRequest(workdir=str(workdir),
                                                              code="print('ran')"))
    assert result.exit_code == 0 and result.stdout_tail.strip() == "ran", result


def test_user_task_count_matches_a_count_from_ps():
    counted = executor.user_task_count(os.getuid())
    listed = subprocess.run(["ps", "-e", "-L", "-o", "ruid="], capture_output=True, text=True,
                            check=True).stdout.split()
    by_ps = sum(int(uid) == os.getuid() for uid in listed)
    assert abs(counted - by_ps) <= max(5, by_ps // 20)  # others start and stop tasks
    assert executor.user_task_count(54321) == sum(int(uid) == 54321 for uid in listed) == 0


NON_ROOT_SCRIPT = """
import json, sys, tempfile
from sandbox_runner import ExecRequest, Limits, Sandbox
sandbox = Sandbox(interpreter=sys.executable, use_cgroups=False)
threads = ("import threading, time\\nts = [threading.Thread(target=time.sleep, args=(0.5,)) "
           "for _ in range({n})]\\nfor t in ts: t.start()\\nprint('ok')")
out = {"enforced": sandbox.enforcement()["max_processes"], "backend": sandbox.setup.backend.name}
for n in (4, 40):
    req = ExecRequest(workdir=tempfile.mkdtemp(), code=threads.format(n=n),
                      limits=Limits(max_processes=16, wall_s=20))
    out[n] = sandbox.run(req).to_dict()
print(json.dumps(out))
"""


def test_without_cgroups_a_non_root_user_is_bound_by_rlimit_nproc():
    """What users' machines look like: no writable cgroup, not root. Root (this test's
    privilege) drops to `nobody` with the system Python to get there."""
    if os.geteuid() != 0:
        pytest.skip("already not root: the other tests here run the non-root path")
    system_python = "/usr/bin/python3"
    check = "import sys; print(sys.version_info >= (3, 11))"
    version = subprocess.run([system_python, "-c", check], capture_output=True, text=True)
    if version.stdout.strip() != "True" or not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("needs /usr/bin/setpriv and a system Python >= 3.11 to act as `nobody`")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           "env", "-i", "PATH=/usr/bin:/bin", f"PYTHONPATH={repo}",
                           system_python, "-c", NON_ROOT_SCRIPT],
                          capture_output=True, text=True, timeout=120, cwd="/tmp")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["enforced"].startswith("RLIMIT_NPROC")
    assert out["4"]["exit_code"] == 0 and out["4"]["stdout_tail"] == "ok\n"
    assert out["40"]["exit_code"] != 0 and "max_processes" in out["40"]["limits_hit"]


def test_directories_from_elsewhere_are_shown_at_the_requests_paths(sandbox, tmp_path):
    """A request made on another node names that node's paths; here they lie elsewhere (`sources`):
    bwrap shows them at the request's paths, the other backends refuse rather than mislead."""
    workspace, public = tmp_path / "copy-of-ws", tmp_path / "copy-of-public"
    workspace.mkdir()
    public.mkdir()
    (public / "train.csv").write_text("a,b\n")
    asked_ws, asked_public = "/nonexistent/ws-of-the-caller", "/nonexistent/caller-public"
    req = ExecRequest(workdir=asked_ws, readonly_mounts=(asked_public,), limits=FAST,
                      code=f"import os\nprint(os.getcwd(), os.environ['HOME'])\n"
                           f"print(open('{asked_public}/train.csv').read(), end='')\n"
                           "open('written', 'w').write('here')\n")
    sources = {asked_ws: str(workspace), asked_public: str(public)}
    if sandbox.setup.backend.name != "bwrap":
        with pytest.raises(ValueError, match="needs bwrap"):
            sandbox.run(req, sources=sources)
        return
    result = sandbox.run(req, sources=sources)
    assert result.exit_code == 0, result.stderr_tail
    assert result.stdout_tail == f"{asked_ws} {asked_ws}\na,b\n"
    assert (workspace / "written").read_text() == "here"
