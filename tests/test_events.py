"""TensorBoard events and plain progress lines (gan_core/events.py), read back from real runs."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tensorboardX.proto import event_pb2

from gan_core.events import PlainProgress

REPO = Path(__file__).resolve().parents[1]


def read_events(folder: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, bytes]]]]:
    """(scalars, images) by tag from every events file in ``folder``, parsed from the TFRecord
    framing and the Event protobuf without TensorBoard; TensorBoard's purge rule applied (a
    SessionLog START at step s drops the earlier points at steps >= s)."""
    scalars: dict[str, list[tuple[int, float]]] = defaultdict(list)
    images: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            body = data[pos + 12:pos + 12 + length]
            pos += 12 + length + 4
            ev = event_pb2.Event.FromString(body)
            if ev.HasField("session_log") and ev.session_log.status == ev.session_log.START:
                for d in (scalars, images):
                    for tag in d:
                        d[tag] = [p for p in d[tag] if p[0] < ev.step]
            for v in ev.summary.value:
                if v.HasField("image"):
                    images[v.tag].append((ev.step, v.image.encoded_image_string))
                elif v.HasField("simple_value"):
                    scalars[v.tag].append((ev.step, v.simple_value))
    return dict(scalars), dict(images)


def test_train_writes_every_logged_scalar_and_each_sample_grid(tiny_cfg, tmp_path):
    from PIL import Image

    from gan_core.io import read_jsonl
    from gan_core.loop import train

    cfg = tiny_cfg("mlp", steps=8, sets=["train.images=96", "train.log_every=32", "train.sample_every=48"])
    train(cfg, tmp_path / "run", progress=False)
    cfg.train.images = 160  # resume: the second file purges nothing before 96 and adds the rest
    train(cfg, tmp_path / "run", progress=False)
    scalars, images = read_events(tmp_path / "run")
    log = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["images_seen"] for r in log] == [32, 64, 96, 128, 160]
    for key in ("loss_d", "loss_g", "acc_real", "d_error", "images_per_s", "max_weight"):
        assert [s for s, _ in scalars[f"train/{key}"]] == [32, 64, 96, 128, 160], key
        assert [v for _, v in scalars[f"train/{key}"]] == [
            float(struct.unpack("f", struct.pack("f", r[key]))[0]) for r in log], key
    assert [v for _, v in scalars["train/train_g"]] == [1.0] * 5
    # Grids at 0, 48, 96 (end of the first run), 144, 160: PNGs of the sample grid's size.
    assert [s for s, _ in images["samples"]] == [0, 48, 96, 144, 160]
    pngs = [Image.open(io.BytesIO(b)) for _, b in images["samples"]]
    grid = Image.open(tmp_path / "run" / "samples" / "step-000010.png")
    assert all(p.format == "PNG" and p.size == grid.size for p in pngs)


def test_plain_progress_prints_a_line_every_few_percent():
    out = io.StringIO()
    bar = PlainProgress(200, 20, "run", every=0.1, file=out)
    for _ in range(180):
        bar.update(1)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split()[2] for line in lines] == [f"{n}/200" for n in range(40, 201, 20)]


def test_train_redirected_to_a_file_has_no_carriage_returns(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "out.txt", "w") as out:
        subprocess.run([sys.executable, "-m", "search.cli", "train", "--preset", "mnist-mlp", "--no-eval",
                        "--set", "model.width=0.0625", "--set", "train.batch_size=16", "--steps", "40",
                        "--threads", "1", "--out", str(tmp_path / "run")],
                       stdout=out, stderr=subprocess.STDOUT, env=env, check=True, cwd=REPO)
    text = (tmp_path / "out.txt").read_text()
    assert "\r" not in text
    progress = [line for line in text.splitlines() if "/40 steps" in line]
    assert len(progress) == 20 and progress[-1].split()[2] == "40/40"  # one line per 5 %
    assert json.loads(text.splitlines()[-1])["status"] == "completed"


def test_without_tensorboardx_training_writes_no_events(tiny_cfg, tmp_path, monkeypatch):
    from gan_core.loop import train

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # `import tensorboardX` raises ImportError
    result = train(tiny_cfg("mlp", steps=4), tmp_path / "run", progress=False)
    assert result.status == "completed" and result.step == 4
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    assert (tmp_path / "run" / "metrics.jsonl").exists()


def test_flush_puts_every_point_recorded_so_far_on_disk(tmp_path):
    """A search trial flushes before each report, and Ray copies the file when the trial stops:
    tensorboardX's own writer queued points for a thread and its flush() left them in the queue."""
    from gan_core.events import EventWriter

    events = EventWriter.open(tmp_path, purge_from=3073)
    for n in range(1, 51):
        events.record({"kind": "eval", "images_seen": 1024 * n, "score": float(n)})
    events.flush()  # not closed: the file is read as Ray copies it
    scalars, _ = read_events(tmp_path)
    assert [s for s, _ in scalars["eval/score"]] == [1024 * n for n in range(1, 51)]
    events.close()
