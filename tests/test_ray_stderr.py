"""What `ccv convert --ray` does with the lines Ray's C++ core writes to the driver's stderr
(ray_runner.ray_lines_to): routine ones go to a log, everything else reaches the terminal in order.
No Ray needed: the pipe is tested on its own, so these run everywhere."""
from __future__ import annotations

import os
import threading

from cyclegan_convert.ray_runner import _pump, ray_lines_to

WARNING = (b"[2026-11-30 08:24:41,411 E 2740 2740] core_worker.cc:2465: Actor with class name: "
           b"'MapWorker(MapBatches(_InferActor))' has constructor arguments in the object store and max_restarts > 0.\n")
INFO = b"[2026-11-30 08:25:00,615 I 3162 3162] logging.cc:303: Set ray log level to 3\n"
FATAL = b"[2026-11-30 08:25:01,000 F 3162 3162] core_worker.cc:99: Check failed: something real\n"


def _through_pump(writes: list[bytes], log) -> bytes:
    """What reaches the terminal when ``writes`` go into the pipe, each write on its own."""
    r, w = os.pipe()
    tr, tw = os.pipe()
    pump = threading.Thread(target=_pump, args=(r, tw, log))
    pump.start()
    for data in writes:
        os.write(w, data)
    os.close(w)
    pump.join(5)
    assert not pump.is_alive()
    os.close(tw)
    with os.fdopen(tr, "rb") as f:
        return f.read()


def test_routine_ray_lines_go_to_the_log_and_everything_else_to_the_terminal_in_order(tmp_path):
    log = tmp_path / "logs" / "ray-driver.log"
    shown = _through_pump([b"working 10%\r", WARNING[:30], WARNING[30:], b"[not ray] a line of ours\n", INFO,
                           b"error: p1.jpg: cannot decode\n", FATAL, WARNING, b"no newline at the end"], log)
    assert shown == (b"working 10%\r[not ray] a line of ours\nerror: p1.jpg: cannot decode\n" + FATAL
                     + b"no newline at the end")
    assert log.read_bytes() == WARNING + INFO + WARNING


def test_a_log_that_cannot_be_written_sends_its_lines_to_the_terminal(tmp_path):
    (tmp_path / "logs").write_text("a file where the folder would be")
    shown = _through_pump([b"before\n", WARNING, b"after\n"], tmp_path / "logs" / "ray-driver.log")
    assert shown == b"before\n" + WARNING + b"after\n"


def test_descriptor_2_is_restored_after_the_run_and_after_an_error(tmp_path, capfd):
    log = tmp_path / "ray-driver.log"
    for fail in (False, True):
        try:
            with ray_lines_to(log):
                os.write(2, WARNING + b"shown\n")
                if fail:
                    raise RuntimeError("a worker's error")
        except RuntimeError:
            pass
        os.write(2, b"after\n")
    assert capfd.readouterr().err == "shown\nafter\n" * 2
    assert log.read_bytes() == WARNING * 2
