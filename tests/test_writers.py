"""Metric writers behind one interface: JSONL, TensorBoard, and Weights & Biases in its offline mode."""

import glob
import json
import struct

import pytest

from gan_jax import config as config_lib
from gan_jax.loop import writers


def test_multi_writer_fans_out_and_jsonl_keeps_one_line_per_write(tmp_path):
    seen = []

    class Recorder(writers.MetricWriter):
        def write_scalars(self, step, scalars):
            seen.append((step, dict(scalars)))

    multi = writers.MultiWriter([writers.JsonlWriter(tmp_path), Recorder()])
    multi.write_scalars(5, {"train/d_loss": 1.5})
    multi.write_scalars(10, {"train/d_loss": 0.5, "eval/modes": 3})
    multi.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == [{"step": 5, "train/d_loss": 1.5}, {"step": 10, "train/d_loss": 0.5, "eval/modes": 3.0}]
    assert seen == [(5, {"train/d_loss": 1.5}), (10, {"train/d_loss": 0.5, "eval/modes": 3})]


def test_writers_are_chosen_in_the_config(tmp_path):
    c = config_lib.default_config()
    c.writers = "jsonl"
    w = writers.make_writer(c, tmp_path)
    assert [type(x) for x in w.writers] == [writers.JsonlWriter]
    w.close()
    c.writers = "jsonl,tensorbord"
    with pytest.raises(config_lib.ConfigError, match="tensorbord"):
        config_lib.validate(c, 1)


def _wandb_history(path) -> list[dict]:
    """The history records of an offline W&B run file: a LevelDB-style log of protobuf `Record`s."""
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    block, pos, chunks, records = 32768, 7, b"", []  # 7: the file header (":W&B", magic, version)
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        chunks = chunk if kind in (1, 2) else chunks + chunk  # 1 full, 2 first, 3 middle, 4 last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            if record.WhichOneof("record_type") == "history":
                records.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                for item in record.history.item})
    return records


@pytest.mark.slow
def test_training_logs_the_same_scalars_to_wandb_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from gan_jax.loop.trainer import train_and_evaluate

    monkeypatch.setenv("WANDB_SILENT", "true")
    config = config_lib.load_config("grid25:runlocal,wandb.mode=offline")
    config.unlock()
    config.writers = "jsonl,wandb"
    config.lock()
    train_and_evaluate(config, tmp_path / "run", progress=False)
    jsonl = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    (run_file,) = glob.glob(str(tmp_path / "run" / "wandb" / "offline-run-*" / "run-*.wandb"))
    history = _wandb_history(run_file)
    assert history, "no history records in the offline run"
    by_step: dict[int, dict] = {}
    for record in history:
        by_step.setdefault(record["_step"], {}).update({k: v for k, v in record.items() if not k.startswith("_")})
    for line in jsonl:
        logged = by_step[line["step"]]
        for key, value in line.items():
            if key != "step":
                assert logged[key] == pytest.approx(value, rel=1e-6), key
