"""The streaming pipeline on its own: batching by key, failures, errors, stop, bounded memory."""
from __future__ import annotations

import threading
import time

import pytest

from cyclegan_convert.pipeline import ItemFailed, Pipeline, PipelineConfig


def _make(jobs_done, failed, cfg=PipelineConfig(decode_workers=2, encode_workers=2, batch_size=3), **kw):
    batches = []
    in_flight = {"now": 0, "max": 0}
    lock = threading.Lock()

    def decode(j):
        if j == "bad":
            raise ItemFailed("bad: cannot decode")
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        return (j, len(str(j)) % 2)  # two groups

    def infer(items):
        batches.append([i for i in items])
        return [(j, g) for j, g in items]

    def encode(r):
        with lock:
            in_flight["now"] -= 1
        jobs_done.append(r[0])

    p = Pipeline(cfg, kw.pop("decode", decode), kw.pop("infer", infer), kw.pop("encode", encode),
                 group=lambda d: d[1], on_failed=lambda j, m: failed.append((j, m)), job_of=lambda d: d[0], **kw)
    return p, batches, in_flight


def test_every_item_once_batched_by_group_and_failures_reported():
    done, failed = [], []
    p, batches, _ = _make(done, failed)
    jobs = list(range(50)) + ["bad"]
    p.run(iter(jobs))
    assert sorted(done) == list(range(50))
    assert failed == [("bad", "bad: cannot decode")]
    assert all(len({g for _, g in b}) == 1 for b in batches)  # one group per batch
    assert all(1 <= len(b) <= 3 for b in batches)
    assert not p.interrupted


def test_memory_is_bounded_on_many_items():
    done, failed = [], []
    cfg = PipelineConfig(decode_workers=2, encode_workers=1, batch_size=4)

    def slow_encode(r):
        time.sleep(0.0005)
        done.append(r[0])
        in_flight["now"] -= 1

    p, _, in_flight = _make(done, failed, cfg, encode=slow_encode)
    p.run(iter(range(3000)))
    assert len(done) == 3000
    # decoded but not yet written: queues and pending batches, never the whole input
    assert in_flight["max"] <= 40


def test_worker_error_is_raised_in_the_calling_thread():
    done, failed = [], []

    def broken_encode(r):
        raise ZeroDivisionError("a bug in a worker")

    p, _, _ = _make(done, failed, encode=broken_encode)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        p.run(iter(range(100)))


def test_inference_error_is_raised_too():
    done, failed = [], []

    def broken_infer(items):
        raise ValueError("engine exploded")

    p, _, _ = _make(done, failed, infer=broken_infer)
    with pytest.raises(ValueError):
        p.run(iter(range(10)))


def test_stop_event_finishes_in_flight_and_returns():
    done, failed = [], []
    stop = threading.Event()

    def infer(items):
        if len(done) >= 5:
            stop.set()
        time.sleep(0.002)
        return list(items)

    p, _, _ = _make(done, failed, infer=infer, stop=stop)
    p.run(iter(range(100_000)))
    assert p.interrupted
    assert 5 <= len(done) < 1000
    assert len(set(done)) == len(done)


def test_keyboard_interrupt_in_inference_stops_cleanly():
    done, failed = [], []
    calls = {"n": 0}

    def infer(items):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return list(items)

    p, _, _ = _make(done, failed, infer=infer)
    p.run(iter(range(1000)))
    assert p.interrupted
    time.sleep(0.05)
    assert 1 <= len(done) < 1000  # what was inferred before Ctrl-C was written
