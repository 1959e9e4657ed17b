"""The metrics writer's JSONL is complete and readable, and its TensorBoard events decode."""

import math

from tensorboardX.proto import event_pb2

from sandmle_jax.monitoring import metrics_writer


def _read_events(path):
    """Decodes TFRecord framing (len, crc, data, crc) by hand: an independent reader."""
    data = path.read_bytes()
    pos, events = 0, []
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 8], "little")
        pos += 12
        events.append(event_pb2.Event.FromString(data[pos:pos + length]))
        pos += length + 4
    return events


def test_writes_jsonl_and_tensorboard(tmp_path):
    with metrics_writer.MetricsWriter(tmp_path) as writer:
        writer.write(1, {"reward/mean": 0.25, "loss": 1.5})
        writer.write(2, {"reward/mean": 0.5, "loss": math.nan})
    rows = list(metrics_writer.read_metrics(tmp_path))
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[0]["reward/mean"] == 0.25 and rows[1]["loss"] is None
    (event_file,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    scalars = [(e.step, v.tag, v.simple_value) for e in _read_events(event_file)
               for v in e.summary.value]
    assert (1, "loss", 1.5) in scalars and (2, "reward/mean", 0.5) in scalars
    assert not any(tag == "loss" and step == 2 for step, tag, _ in scalars)


def test_appends_on_resume_and_skips_torn_line(tmp_path):
    with metrics_writer.MetricsWriter(tmp_path, tensorboard=False) as writer:
        writer.write(1, {"a": 1})
    with open(tmp_path / metrics_writer.METRICS_FILE, "a") as f:
        f.write('{"step": 2, "a"')  # a write cut short by SIGKILL
    with metrics_writer.MetricsWriter(tmp_path, tensorboard=False) as writer:
        writer.write(3, {"a": 3})
    assert [r["step"] for r in metrics_writer.read_metrics(tmp_path)] == [1, 3]


def test_disabled_writer_writes_nothing(tmp_path):
    with metrics_writer.MetricsWriter(tmp_path / "x", enabled=False) as writer:
        writer.write(1, {"a": 1})
    assert not (tmp_path / "x").exists()
