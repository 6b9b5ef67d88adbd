"""`ccv convert --ray` on a local Ray instance (2 CPUs) with a tiny generator: the same files as a
local run, a bad file failing alone, reruns that rewrite nothing in either direction, and an
inference actor killed mid-run. Skipped when Ray Data is not installed (`pip install
'cyclegan-convert[ray]'`, or `.venv/bin/pip install 'ray[data]>=2.40'`)."""
from __future__ import annotations

import os
import sys

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from cyclegan_convert.cli import app
from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.manifest import FAILURES_NAME, MANIFEST_NAME, read_records
from cyclegan_convert.resolve import resolve_model

from conftest import PHOTOS, needs_ray, torch_threads


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """One small local Ray for the module. The fault marker exists, so no actor dies until a test
    removes it (the variable must be set before Ray starts: workers inherit the environment)."""
    import ray

    from cyclegan_convert.ray_runner import FAULT_ENV

    marker = tmp_path_factory.mktemp("ray_fault") / "died-once"
    marker.touch()
    saved = {k: os.environ.get(k) for k in (FAULT_ENV, "CCV_HOME")}
    os.environ[FAULT_ENV] = str(marker)
    os.environ["CCV_HOME"] = str(tmp_path_factory.mktemp("ray_ccv_home"))  # workers never see the user's store
    try:
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        except Exception as e:  # noqa: BLE001
            if "timed out during startup" not in str(e):
                raise
            # a machine whose CPUs are all taken starves Ray's own processes (a 30 s limit fixed in Ray)
            pytest.skip(f"a local Ray instance could not start here: {e}")
        yield marker
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _photos(folder, n, size=(96, 72)):
    """``n`` small JPEGs from the fixtures, one in a subfolder (the tree is mirrored)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        where = folder / "sub" if i == 0 else folder
        where.mkdir(exist_ok=True)
        Image.open(PHOTOS[i % len(PHOTOS)]).convert("RGB").resize(size).save(where / f"p{i}.jpg", quality=90)
        names.append(str((where / f"p{i}.jpg").relative_to(folder)))
    return names


def _model(tmp_path, tiny_generator):
    path = tmp_path / "tiny.pth"
    torch.save(tiny_generator.state_dict(), path)
    return path


def _ccv(*args):
    return CliRunner().invoke(app, ["convert", *map(str, args)])


def _outputs(out):
    return {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*.jpg")) if not p.name.startswith(".")}


def _mtimes(out):
    return {k: p.stat().st_mtime_ns for k, p in _outputs(out).items()}


@needs_ray
def test_same_files_and_failures_as_a_local_run(tmp_path, tiny_generator, ray_local):
    """Byte-equal, not just pixel-equal: the same stage code runs the same PyTorch backend on the same
    CPU with as many threads and Pillow encodes the same pixels with the same metadata; a difference
    would be a bug."""
    src, model = tmp_path / "in", _model(tmp_path, tiny_generator)
    names = _photos(src, 4)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    with torch_threads(2):  # as many as the inference actor runs (a local Ray of 2 CPUs)
        local = _ccv(src, "-o", tmp_path / "local", "--model", model)
    ray = _ccv(src, "-o", tmp_path / "ray", "--model", model, "--ray")
    assert local.exit_code == 1 and ray.exit_code == 1, ray.output  # the bad file fails alone, exit 1
    a, b = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert sorted(a) == sorted(b) == sorted(names)
    for name in names:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    failures = (tmp_path / "ray" / FAILURES_NAME).read_text()
    assert failures.count("\n") == 1 and str(src / "broken.jpg") in failures
    assert failures.split("\t")[1] == (tmp_path / "local" / FAILURES_NAME).read_text().split("\t")[1]
    ra, rb = read_records(tmp_path / "local" / MANIFEST_NAME), read_records(tmp_path / "ray" / MANIFEST_NAME)
    assert ra == rb and sorted(rb) == sorted(names)  # same sources, stamps and settings key
    assert "Ray actor" in ray.output and "time split" in ray.output


@needs_ray
def test_reruns_rewrite_nothing_whichever_way_each_run_was_made(tmp_path, tiny_generator, ray_local):
    src, model, out = tmp_path / "in", _model(tmp_path, tiny_generator), tmp_path / "out"
    ref = resolve_model(model=model)
    names = _photos(tmp_path / "staged", 5)
    for name in names[:2]:  # renames keep the sources' mtimes, which the manifest's stamps check
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "staged" / name).rename(src / name)
    assert Converter(ref, ConvertOptions(output=out)).run([str(src)]).converted == 2  # half, locally
    before = _mtimes(out)
    for name in names[2:]:
        (tmp_path / "staged" / name).rename(src / name)
    result = _ccv(src, "-o", out, "--model", model, "--ray")
    assert result.exit_code == 0, result.output
    after = _mtimes(out)
    assert sorted(after) == sorted(names) and all(after[k] == v for k, v in before.items())  # only the missing
    again = _ccv(src, "-o", out, "--model", model, "--ray")
    assert again.exit_code == 0 and _mtimes(out) == after, again.output
    local_again = Converter(ref, ConvertOptions(output=out)).run([str(src)])
    assert (local_again.converted, local_again.skipped) == (0, 5) and _mtimes(out) == after


@needs_ray
def test_an_inference_actor_killed_mid_run_is_restarted_and_the_output_is_complete(tmp_path, tiny_generator,
                                                                                    ray_local):
    src, model = tmp_path / "in", _model(tmp_path, tiny_generator)
    names = _photos(src, 6)
    ray_local.unlink()  # the next actor to get a batch creates the marker and exits
    result = _ccv(src, "-o", tmp_path / "out", "--model", model, "--ray")
    assert ray_local.exists(), "no actor died: the test proved nothing"
    assert result.exit_code == 0, result.output
    assert sorted(_outputs(tmp_path / "out")) == sorted(names)
    assert sorted(read_records(tmp_path / "out" / MANIFEST_NAME)) == sorted(names)
    assert not [p for p in (tmp_path / "out").rglob(".*.part*")]  # the dead attempt left no temporary file


def test_without_ray_installed_the_flag_is_one_usage_line(tmp_path, tiny_generator, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    src, model = tmp_path / "in", _model(tmp_path, tiny_generator)
    _photos(src, 1)
    result = _ccv("--ray", src, "-o", tmp_path / "out", "--model", model)  # a bare --ray: src stays an input
    assert result.exit_code == 2, result.output
    assert "pip install 'cyclegan-convert[ray]'" in result.output
    assert not (tmp_path / "out").exists()


def test_a_bare_ray_flag_before_an_input_takes_no_input_as_its_address():
    from cyclegan_convert.cli.convert import is_ray_address

    assert all(map(is_ray_address, ["auto", "local", "ray://head:10001", "10.0.0.5:6379"]))
    assert not any(map(is_ray_address, ["photos/", "a.jpg", "./x:1", "C:/photos"]))


@needs_ray
def test_ctrl_c_on_the_driver_keeps_what_is_done_and_a_rerun_finishes_the_rest(tmp_path, tiny_generator, ray_local):
    """Ctrl-C (KeyboardInterrupt in the driver's main thread) once the first outputs are committed:
    the run ends as interrupted, every visible output is a complete image in the manifest, nothing
    that looks complete is half-written, and a rerun converts only what is missing."""
    import _thread
    import threading
    import time

    from cyclegan_convert.ray_runner import RayConverter

    src, model, out = tmp_path / "in", _model(tmp_path, tiny_generator), tmp_path / "out"
    names = _photos(src, 200, size=(128, 96))
    ref = resolve_model(model=model)
    done = threading.Event()

    def interrupt_after_the_first_outputs():
        while not done.is_set():
            if len(_outputs(out)) >= 3:
                _thread.interrupt_main()
                return
            time.sleep(0.02)

    threading.Thread(target=interrupt_after_the_first_outputs, daemon=True).start()
    try:
        summary = RayConverter(ref, ConvertOptions(output=out)).run([str(src)])
    finally:
        done.set()
    assert summary.interrupted and 3 <= summary.converted < len(names), summary
    visible = _outputs(out)
    records = read_records(out / MANIFEST_NAME)
    # every visible output is recorded (the record is written first, then the rename); the interrupt
    # may land between the two for the file being committed: recorded, not there, redone by the rerun
    assert set(visible) <= set(records) and len(set(records) - set(visible)) <= 1
    for path in visible.values():
        with Image.open(path) as im:
            im.load()  # a truncated file would raise here
            assert im.size == (128, 96)
    before = _mtimes(out)
    rerun = RayConverter(ref, ConvertOptions(output=out)).run([str(src)])
    assert not rerun.interrupted and not rerun.failed
    assert (rerun.converted, rerun.skipped) == (len(names) - len(before), len(before))
    after = _mtimes(out)
    assert sorted(after) == sorted(names) and all(after[k] == v for k, v in before.items())
    assert not [p for p in out.rglob(".*.part*")]  # temporaries of the interrupted run are cleaned up


@needs_ray
def test_a_ray_run_as_a_command_prints_no_ray_log_lines(tmp_path, tiny_generator):
    """A user's run, in its own process with its own local Ray: stderr holds nothing (Ray's warning
    about actor restarts goes to the ccv data folder's logs/ray-driver.log), stdout has the summary."""
    import subprocess

    src, model = tmp_path / "in", _model(tmp_path, tiny_generator)
    _photos(src, 3)
    env = {**os.environ, "CCV_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-m", "cyclegan_convert", "convert", str(src), "-o", str(tmp_path / "out"),
                        "--model", str(model), "--ray"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stderr == "" and "converted" in r.stdout
    assert len(_outputs(tmp_path / "out")) == 3
    # where the warning went (Ray 2.60 prints it on every actor-pool run; a Ray that stops doing so
    # fails this line, and the filter may then be dropped)
    assert b"has constructor arguments in the object store" in (tmp_path / "home" / "logs" / "ray-driver.log").read_bytes()
