"""Ctrl-C and kill -9 in the middle of a run: finished outputs are whole, and a re-run completes
the rest, skipping what was done."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch
from PIL import Image

from cyclegan_convert.converter import ConvertOptions, Converter
from cyclegan_convert.manifest import MANIFEST_NAME
from cyclegan_convert.resolve import resolve_model

from conftest import PHOTOS

N = 20


# The first two runs convert 0.2 s slower per image than they could, so the signal always arrives
# while files are left: a run that finished first would say nothing about the handler.
SLOW_CHILD = ("import time\n"
              "from cyclegan_convert.backends.torch_backend import TorchBackend\n"
              "run = TorchBackend._run\n"
              "TorchBackend._run = lambda self, x: (time.sleep(0.2), run(self, x))[1]\n"
              "from cyclegan_convert.cli import main\n"
              "main()")


def _terminal_ctrl_c() -> None:
    # A suite run as a background job (`make test &`, nohup) ignores SIGINT, the child inherits that
    # and Python then rightly leaves it ignored: give the child a terminal session's Ctrl-C.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(src, out, model, env):
    cmd = [sys.executable, "-c", SLOW_CHILD, "convert", str(src),
           "--model", str(model), "-o", str(out), "--jobs", "1"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_terminal_ctrl_c)


def _done(out):
    return sorted(p for p in out.glob("*.jpg") if not p.name.startswith("."))


def _wait_for(proc, out, n, limit=600.0):
    """Until ``n`` outputs exist (a loaded machine can take a minute just to import torch)."""
    t0 = time.monotonic()
    while len(_done(out)) < n and proc.poll() is None and time.monotonic() - t0 < limit:
        time.sleep(0.05)
    assert len(_done(out)) >= n and proc.poll() is None, f"the run wrote {len(_done(out))} files, exit {proc.poll()}"


@pytest.mark.slow
def test_interrupt_then_kill_then_resume(tmp_path, tiny_generator, ccv_home):
    import os

    model = tmp_path / "m.pth"
    torch.save(tiny_generator.state_dict(), model)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    base = Image.open(PHOTOS[0]).convert("RGB").resize((192, 192))
    for i in range(N):
        base.rotate(i * 7).save(src / f"{i:03d}.jpg", quality=90)
    env = {**os.environ, "CCV_HOME": str(ccv_home), "COLUMNS": "200"}

    # Ctrl-C: the files in flight are finished, exit code 130
    p = _start(src, out, model, env)
    _wait_for(p, out, 2)
    p.send_signal(signal.SIGINT)
    text, _ = p.communicate(timeout=60)
    first = len(_done(out))
    assert p.returncode == 130, text  # 0 would mean the handler let the run go on to the end
    assert 2 <= first < N

    # kill -9: no clean-up at all
    p = _start(src, out, model, env)
    _wait_for(p, out, first + 2)
    p.kill()
    p.communicate(timeout=30)
    second = len(_done(out))
    for f in _done(out):  # every visible output is complete
        with Image.open(f) as im:
            im.load()
            assert im.size == (192, 192)

    # the same command again, through the API (one process start less): it completes the rest
    s = Converter(resolve_model(model=model), ConvertOptions(output=out, jobs=1)).run([str(src)])
    assert not s.failed and not s.interrupted
    assert len(_done(out)) == N
    assert (s.skipped, s.converted) == (second, N - second)  # the killed run's outputs were kept
    assert not [f for f in out.iterdir() if f.name.startswith(".") and f.name != MANIFEST_NAME]  # no temp files left


def test_a_torn_last_manifest_line_does_not_swallow_the_next_record(tmp_path):
    from cyclegan_convert.manifest import Manifest

    src = tmp_path / "a.jpg"
    src.write_bytes(b"x")
    m = Manifest(tmp_path)
    m.add("a.jpg", "k", src)
    m.close()
    with open(tmp_path / MANIFEST_NAME, "a", encoding="utf-8") as f:
        f.write('{"out": "b.jpg", "ke')  # a kill in the middle of a line
    m = Manifest(tmp_path)
    m.add("c.jpg", "k", src)
    m.close()
    again = Manifest(tmp_path)
    assert again.is_done("a.jpg", "k", src) and again.is_done("c.jpg", "k", src) and again.get("b.jpg") is None
