"""A small seccomp filter for the bwrap backend: denies (EPERM) the syscalls that reach across
process or kernel boundaries and that ML code never needs.

Why: ptrace lets a program stop the sandbox's own init and wedge its run until the wall clock;
bpf, perf_event_open, userfaultfd and keyrings are the usual kernel attack surface. Other
system-call ABIs (x32, 32-bit) are denied wholesale, so numbers cannot be aliased around it.
"""

import platform
import struct

_EPERM = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM
_ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
_X32_BIT = 0x40000000

DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "bpf", "perf_event_open",
          "userfaultfd", "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load")

# (audit arch, syscall numbers) per machine, from the kernel's syscall tables.
_ARCHES = {
    "x86_64": (0xC000003E, {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
                            "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
                            "keyctl": 250, "add_key": 248, "request_key": 249,
                            "kexec_load": 246, "kexec_file_load": 320}),
    "aarch64": (0xC00000B7, {"ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
                             "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
                             "keyctl": 219, "add_key": 217, "request_key": 218,
                             "kexec_load": 104, "kexec_file_load": 294}),
}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def filter_program(machine: str | None = None) -> bytes | None:
    """The BPF program bwrap's --seccomp expects, or None on an architecture not listed here."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        return None
    arch, numbers = _ARCHES[machine]
    ld_abs, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    denied = [numbers[name] for name in DENIED]
    x32_check = machine == "x86_64"
    # Layout: [ld arch][jeq arch][ld nr][x32 check?][jeq nr]*n [ret allow][ret eperm];
    # a jump's offset counts the instructions skipped after it.
    body_len = int(x32_check) + len(denied)
    program = [_insn(ld_abs, 4),
               _insn(jeq, arch, jt=0, jf=body_len + 2),  # foreign ABI -> eperm
               _insn(ld_abs, 0)]
    if x32_check:
        program.append(_insn(jge, _X32_BIT, jt=body_len, jf=0))
    for i, number in enumerate(denied):
        program.append(_insn(jeq, number, jt=len(denied) - i, jf=0))
    program += [_insn(ret, _ALLOW), _insn(ret, _EPERM)]
    return b"".join(program)
