"""Contract dataclasses, their JSON round trip, the head/tail capture and the seccomp program."""

import json
import random
import struct

import pytest

from sandbox_runner import seccomp
from sandbox_runner.capture import HeadTail
from sandbox_runner.contracts import ExecRequest, ExecResult, Isolation, Limits


def test_limits_reject_non_positive_values_with_the_field_name():
    with pytest.raises(ValueError, match="Limits.memory_bytes"):
        Limits(memory_bytes=0)
    with pytest.raises(ValueError, match="Limits.wall_s"):
        Limits(wall_s=-1)


def test_request_needs_exactly_one_of_argv_and_code():
    with pytest.raises(ValueError, match="exactly one"):
        ExecRequest(workdir="/tmp")
    with pytest.raises(ValueError, match="exactly one"):
        ExecRequest(workdir="/tmp", argv=("true",), code="print(1)")


def test_request_and_result_survive_a_json_round_trip():
    req = ExecRequest(workdir="/w", code="print(1)", readonly_mounts=("/p",),
                      limits=Limits(wall_s=3, cpus=2), env={"A": "1"})
    assert ExecRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req
    res = ExecResult(exit_code=-9, stdout_tail="a", stderr_tail="b", wall_s=1.5, cpu_s=0.5,
                     peak_rss=10, timed_out=True, killed_by="wall_s", isolation="bwrap",
                     limits_hit=("wall_s", "max_processes"), enforced=("wall_s=timer",))
    assert ExecResult.from_dict(json.loads(json.dumps(res.to_dict()))) == res


def test_unknown_fields_are_rejected_by_name():
    with pytest.raises(ValueError, match="wall_seconds"):
        Limits.from_dict({"wall_seconds": 3})


def test_isolation_levels_parse_and_order():
    assert Isolation.parse("bwrap") > Isolation.parse("namespaces") > Isolation.parse("RLIMITS")
    with pytest.raises(ValueError, match="unknown isolation level"):
        Isolation.parse("vm")


@pytest.mark.parametrize("limit", [64, 100, 1001])
def test_head_tail_keeps_exactly_the_first_and_last_bytes(limit):
    rng = random.Random(limit)
    data = bytes(rng.randrange(97, 123) for _ in range(5000))
    capture = HeadTail(limit)
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 700)
        capture.feed(data[pos:pos + step])
        pos += step
    head, tail = limit // 2, limit - limit // 2
    expected = (data[:head] + f"\n[... {len(data) - limit} bytes omitted ...]\n".encode()
                + data[-tail:])
    assert capture.text() == expected.decode()
    assert capture.total == len(data)


def test_head_tail_returns_short_output_unchanged():
    capture = HeadTail(100)
    capture.feed(b"hello\n")
    assert capture.text() == "hello\n" and capture.total == 6


def _run_bpf(program: bytes, nr: int, arch: int) -> int:
    """A reference interpreter for the few classic-BPF instructions the filter uses."""
    insns = [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("<iI", nr, arch)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack("<I", data[k:k + 4])[0]
        elif code == 0x15:
            pc += jt if acc == k else jf
        elif code == 0x35:
            pc += jt if acc >= k else jf
        elif code == 0x06:
            return k
        pc += 1


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_filter_denies_exactly_the_listed_syscalls(machine):
    program = seccomp.filter_program(machine)
    arch, numbers = seccomp._ARCHES[machine]
    denied = {numbers[name] for name in seccomp.DENIED}
    for nr in range(0, 460):
        expected = 0x00050001 if nr in denied else 0x7FFF0000
        assert _run_bpf(program, nr, arch) == expected, nr
    assert _run_bpf(program, 39, 0x40000003) == 0x00050001  # the 32-bit ABI is denied
    if machine == "x86_64":
        assert _run_bpf(program, 39 | 0x40000000, arch) == 0x00050001  # x32 ABI denied


def test_seccomp_has_no_program_for_unknown_machines():
    assert seccomp.filter_program("riscv64") is None


@pytest.mark.parametrize("fields", [{"workdir": "runs/ws"},
                                    {"workdir": "/ws", "readonly_mounts": ("tasks/t/public",)}])
def test_relative_paths_are_refused_before_anything_runs(fields):
    """The program runs in another working directory (and, through the service, in another
    process): a relative path would name another place there."""
    with pytest.raises(ValueError, match="is relative; pass an absolute path"):
        ExecRequest(code="print(1)", **fields)
    with pytest.raises(ValueError, match="is relative"):
        ExecRequest.from_dict({"code": "print(1)", "readonly_mounts": [], **fields})
