"""Where a train step's time goes, matrix products against the rest, for ours and for torch.

How far one framework can beat another on a step is bounded by the part both do at the core's
peak: if matmuls take most of torch's step and ours run no faster, no change elsewhere reaches a
given ratio. Each side is read from its own profiler: torch.profiler (self time of its matmul and
fused-attention kernels) and jax.profiler, whose trace is read with `xprof` (`pip install
xprof`; not a dependency of the package), an XLA op counting as a matmul when its computation
holds a dot.
"""

import collections
import glob
import json
import re
import tempfile

import jax

TORCH_MATMULS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
                 "aten::_scaled_dot_product_flash_attention_for_cpu",
                 "aten::_scaled_dot_product_flash_attention_for_cpu_backward")


def torch_split(step, steps: int) -> tuple[float, float]:
    """(matmul ms, total ms) of one `step()`, self times under torch.profiler, mean of `steps`."""
    from torch import profiler

    with profiler.profile(activities=[profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    matmul = sum(event.self_cpu_time_total for event in events if event.key in TORCH_MATMULS)
    return matmul / steps / 1e3, total / steps / 1e3


def _ops_with_dots(hlo_text: str) -> set[str]:
    """Names of the compiled module's executed instructions (those outside fusion bodies) that
    are dots or fusions whose body holds one."""
    bodies = {}  # computation -> its instruction lines
    current = None
    for line in hlo_text.splitlines():
        header = re.match(r"(?:ENTRY )?%([\w.-]+) \(.*\{$", line)
        if header:
            current = bodies.setdefault(header.group(1), [])
        elif current is not None and " = " in line:
            current.append(line)
    instruction = re.compile(r"\s*(?:ROOT )?%([\w.-]+) = .*?\b(dot|fusion)\((?:.*calls=%([\w.-]+))?")
    fused = {match.group(3) for lines in bodies.values() for line in lines
             if (match := instruction.match(line)) and match.group(2) == "fusion"}
    with_dots = {name for name, lines in bodies.items()
                 if any(re.search(r"\bdot\(", line) for line in lines)}
    ops = set()
    for name, lines in bodies.items():
        if name in fused:
            continue
        for line in lines:
            match = instruction.match(line)
            if match and (match.group(2) == "dot" or match.group(3) in with_dots):
                ops.add(match.group(1))
    return ops


def xla_split(jitted, args: tuple, steps: int) -> tuple[float, float]:
    """(matmul ms, total ms) of one call of `jitted(*args)`, XLA op times from a jax.profiler
    trace, mean of `steps` calls."""
    try:
        from xprof.convert import raw_to_tool_data
    except ImportError:
        raise SystemExit("the XLA op breakdown reads jax.profiler's trace with xprof: "
                         "pip install xprof") from None

    hlo = jitted.lower(*args).compile().as_text()
    matmul_ops = _ops_with_dots(hlo)
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        for _ in range(steps):
            jax.block_until_ready(jitted(*args))
        jax.profiler.stop_trace()
        xplanes = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)
        trace, _ = raw_to_tool_data.xspace_to_tool_data(xplanes, "trace_viewer", {})
    # An XLA op is a complete event ("X") named as its instruction in the HLO.
    micros = collections.Counter()
    for event in json.loads(trace)["traceEvents"]:
        if event.get("ph") == "X" and re.fullmatch(r"[\w.-]+", event["name"]):
            micros[event["name"]] += event["dur"]
    # Only the module's own instructions: the runtime's bookkeeping events are named otherwise.
    ops = {name: us for name, us in micros.items() if f"%{name} = " in hlo}
    matmul = sum(us for name, us in ops.items() if name in matmul_ops)
    return matmul / steps / 1e3, sum(ops.values()) / steps / 1e3
