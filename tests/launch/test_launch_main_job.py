"""The README's main job, run as a user runs it: its command taken from README.md, in a fresh
working directory holding only `configs/` (as a clone has), with the README's relative workdir,
on the smoke recipe. Every earlier measurement of the main job used an absolute workdir, and a
relative one failed every baseline program of the task generator.

Also the console: stage lines and the final table on stdout; absl's, Orbax's and JAX's INFO
lines only in the run's log file; and a broken set-up stops within a minute in one line.
"""

import json
import pathlib
import re
import shutil
import subprocess
import sys
import time

import pytest
import transformers

ROOT = pathlib.Path(__file__).resolve().parents[2]
INFO_LINE = re.compile(r"^I\d{4} ", re.MULTILINE)  # absl's INFO prefix, e.g. I1205 14:36:21


def readme_main_job() -> list[str]:
    """The main-job command of the README's quick start, as argv after the install steps."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?launch\.train.*?)\n```", readme, re.DOTALL)
    assert block, "README.md lost its main-job command"
    command = block.group(1).split("&&")[-1].split()
    assert command[:3] == ["python", "-m", "launch.train"], command
    return command


def _clone_like(tmp_path: pathlib.Path) -> pathlib.Path:
    cwd = tmp_path / "checkout"
    shutil.copytree(ROOT / "configs", cwd / "configs")
    return cwd


@pytest.mark.timeout(1500)  # the job's own limit below: a loaded 2-core box needs >10 min
def test_readme_main_job_with_its_relative_workdir(tmp_path):
    command = readme_main_job()
    assert "--workdir=runs/tiny" in command and "--config=configs/tiny_cpu.py" in command
    argv = [sys.executable, *command[1:]]
    argv[argv.index("--config=configs/tiny_cpu.py")] = "--config=configs/tiny_cpu.py:smoke"
    cwd = _clone_like(tmp_path)
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-4000:]

    workdir = cwd / "runs" / "tiny"
    report = json.loads((workdir / "report.json").read_text())
    for name in ("reference", "before", "after"):
        assert report[name]["episodes"] >= 1 and report[name]["failed_episodes"] == 0, name
    assert report["reference"]["overall"]["valid_submission"]["mean"] == 1.0
    model = transformers.AutoModelForCausalLM.from_pretrained(report["hf_export"])
    assert model.config.model_type == "qwen3"
    transformers.AutoTokenizer.from_pretrained(report["hf_export"])

    lines = done.stdout.splitlines()
    assert lines[0].startswith("sandbox: ") and lines[1].startswith("tasks: generated 6 of 6")
    assert any(line.startswith("GRPO step 2/2: reward") for line in lines)
    table = lines.index("held-out validation tasks, mean ± SEM:")
    assert [line.split()[0] for line in lines[table + 2:table + 5]] == ["reference", "SFT",
                                                                       "GRPO"]
    assert not INFO_LINE.search(done.stdout + done.stderr), "library INFO lines on the console"
    logged = "".join(p.read_text() for p in (workdir / "logs").glob("*INFO*") if p.is_file())
    assert "checkpoint_manager.py" in logged and "tasks: generated 6 of 6" in logged


def test_a_broken_sandbox_stops_the_job_within_a_minute_in_one_line(tmp_path):
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    cwd = _clone_like(tmp_path)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "launch.train", "--config=configs/tiny_cpu.py",
         "--workdir=runs/tiny", f"--config.sandbox.interpreter={bare / 'bin' / 'python'}"],
        cwd=cwd, capture_output=True, text=True, timeout=300)
    assert time.monotonic() - start < 60
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: the sandbox cannot run agent programs")
    assert "No module named 'numpy'" in done.stderr


def test_config_errors_exit_two_before_the_workdir_exists(tmp_path):
    cwd = _clone_like(tmp_path)
    for flags, says in ((["--config=configs/tiny_cpu.py", "--config.grpo.group_size=1"],
                         "grpo.group_size must be >= 2"),
                        (["--config=configs/tiny_cpu.py", "--config.tasks.dir=nowhere"],
                         "tasks.dir 'nowhere': no such directory"),
                        (["--config=configs/tiny_cpu.py", "--config.grpo.no_such_key=1"],
                         "names no key of the config"),
                        (["--config=configs/missing.py"], "--config: "),
                        (["--config=configs/tiny_cpu.py", "--config.tasks.synth.seeds=nope"],
                         "tasks.synth.seeds: unknown seed ids ['nope']")):
        done = subprocess.run([sys.executable, "-m", "launch.train", "--workdir=runs/bad",
                               *flags], cwd=cwd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, (flags, done.stderr[-2000:])
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert says in done.stderr, (says, done.stderr)
        assert not (cwd / "runs").exists()
