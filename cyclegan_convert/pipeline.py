"""A streaming pipeline of threads: decode workers -> batched inference (the calling thread) ->
encode workers, joined by bounded queues, so memory stays flat however many files there are.

- Per-item problems are raised by stage functions as ``ItemFailed``: reported, and the run goes on.
- Anything else raised in a worker stops every stage and is re-raised in the calling thread.
- ``stop`` (an Event) or Ctrl-C stops taking new items; items already inferred are still encoded
  and written, then the pipeline returns with ``interrupted`` set. A second Ctrl-C abandons them.
Decoding and encoding (Pillow, PyAV) release the GIL, so worker threads overlap with inference.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Generic, Hashable, Iterable, Optional, Sequence, TypeVar

from .errors import ItemFailed  # noqa: F401  (re-exported: stage functions raise it)

T = TypeVar("T")  # a job
D = TypeVar("D")  # a decoded item
R = TypeVar("R")  # an inferred item

_END = object()  # end of stream
_POLL = 0.05  # seconds between checks of the stop flags while blocked on a queue


@dataclass
class StageStats:
    """Work done by one stage: items, and seconds its workers spent busy (summed)."""

    workers: int = 1
    items: int = 0
    busy_s: float = 0.0

    @property
    def rate(self) -> float:
        """Items per second this stage sustains with its workers (0 before any work)."""
        return self.items * self.workers / self.busy_s if self.busy_s > 0 else 0.0


@dataclass
class PipelineStats:
    decode: StageStats = field(default_factory=StageStats)
    infer: StageStats = field(default_factory=StageStats)
    encode: StageStats = field(default_factory=StageStats)


@dataclass
class PipelineConfig:
    decode_workers: int = 2
    encode_workers: int = 2
    batch_size: int = 1
    max_pending: int = 0  # decoded items held while batches fill; 0 = 2 * batch_size


class Stopped(Exception):
    """Raised in a thread waiting on a queue once its ``ThreadGroup`` is told to stop."""


class ThreadGroup:
    """Threads that share one stop flag: queue waits block (never drop an item) but give up when the
    flag is set, and the first error raised in any thread is kept for the calling thread."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def fail(self, e: BaseException) -> None:
        with self._lock:
            self.errors.append(e)
        self.stop.set()

    def raise_error(self) -> None:
        if self.errors:
            raise self.errors[0]

    def start(self, target: Callable[[], None], name: str) -> threading.Thread:
        def body() -> None:
            try:
                target()
            except Stopped:
                pass
            except BaseException as e:  # noqa: BLE001  (re-raised in the calling thread)
                self.fail(e)

        t = threading.Thread(target=body, name=name, daemon=True)
        t.start()
        return t

    def put(self, q: queue.Queue, item: object) -> None:
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                q.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue, idle: Callable[[], None] = lambda: None) -> object:
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                idle()
                continue


class Pipeline(Generic[T, D, R]):
    """``decode(job) -> D``; ``infer([D, ...]) -> [R, ...]`` on batches of items with the same
    ``group(D)``; ``encode(R)``. ``on_failed(job, message)`` for items that failed (any stage,
    called from any thread); ``on_tick()`` from the calling thread as work completes."""

    def __init__(self, config: PipelineConfig, decode: Callable[[T], D], infer: Callable[[list[D]], Sequence[R]],
                 encode: Callable[[R], None], group: Callable[[D], Hashable],
                 on_failed: Callable[[T, str], None], job_of: Callable[[D], T],
                 on_tick: Callable[[], None] = lambda: None, stop: Optional[threading.Event] = None):
        self.cfg = config
        self._decode, self._infer, self._encode, self._group = decode, infer, encode, group
        self._on_failed, self._job_of, self._on_tick = on_failed, job_of, on_tick
        self.stop = stop or threading.Event()  # graceful: take no new items
        self._workers = ThreadGroup()  # its stop flag is fatal: everything quits now
        self._lock = threading.Lock()
        self.stats = PipelineStats(StageStats(config.decode_workers), StageStats(1), StageStats(config.encode_workers))
        self.interrupted = False

    def _account(self, stage: StageStats, t0: float, n: int = 1) -> None:
        with self._lock:
            stage.items += n
            stage.busy_s += time.perf_counter() - t0

    # -- stages ------------------------------------------------------------------------------------
    def _feed(self, jobs: Iterable[T], in_q: queue.Queue) -> None:
        try:
            for job in jobs:
                if self.stop.is_set():
                    break
                self._workers.put(in_q, job)
        finally:
            for _ in range(self.cfg.decode_workers):
                try:
                    self._workers.put(in_q, _END)
                except Stopped:
                    break

    def _decoder(self, in_q: queue.Queue, dec_q: queue.Queue) -> None:
        while True:
            job = self._workers.get(in_q)
            if job is _END:
                break
            if self.stop.is_set():
                continue  # drain without work, so the feeder is never blocked
            t0 = time.perf_counter()
            try:
                item = self._decode(job)  # type: ignore[arg-type]
            except ItemFailed as e:
                self._on_failed(job, str(e))  # type: ignore[arg-type]
                continue
            finally:
                self._account(self.stats.decode, t0)
            self._workers.put(dec_q, item)
        self._workers.put(dec_q, _END)

    def _encoder(self, enc_q: queue.Queue) -> None:
        while True:
            item = self._workers.get(enc_q)
            if item is _END:
                break
            t0 = time.perf_counter()
            try:
                self._encode(item)  # type: ignore[arg-type]
            except ItemFailed as e:
                self._on_failed(self._job_of(item), str(e))  # type: ignore[arg-type]
            finally:
                self._account(self.stats.encode, t0)

    # -- the calling thread: batching and inference -----------------------------------------------
    def _run_batch(self, batch: list[D], enc_q: queue.Queue) -> None:
        t0 = time.perf_counter()
        try:
            results = self._infer(batch)
        except ItemFailed as e:
            for d in batch:
                self._on_failed(self._job_of(d), str(e))
            return
        finally:
            self._account(self.stats.infer, t0, len(batch))
        for r in results:
            self._workers.put(enc_q, r)

    def run(self, jobs: Iterable[T]) -> None:
        cfg = self.cfg
        in_q: queue.Queue = queue.Queue(maxsize=2 * cfg.decode_workers)
        dec_q: queue.Queue = queue.Queue(maxsize=cfg.batch_size + cfg.decode_workers)
        enc_q: queue.Queue = queue.Queue(maxsize=2 * cfg.encode_workers)
        max_pending = cfg.max_pending or 2 * cfg.batch_size
        threads = [self._workers.start(lambda: self._feed(jobs, in_q), "ccv-feed")]
        threads += [self._workers.start(lambda: self._decoder(in_q, dec_q), f"ccv-decode-{i}") for i in range(cfg.decode_workers)]
        encoders = [self._workers.start(lambda: self._encoder(enc_q), f"ccv-encode-{i}") for i in range(cfg.encode_workers)]
        pending: dict[Hashable, list[D]] = {}
        n_pending = 0
        ended = 0

        def flush(key: Hashable) -> None:
            nonlocal n_pending
            batch = pending.pop(key)
            n_pending -= len(batch)
            self._run_batch(batch, enc_q)
            self._on_tick()

        try:
            try:
                while ended < cfg.decode_workers:
                    if self.stop.is_set():
                        raise KeyboardInterrupt  # the same clean stop as Ctrl-C
                    try:
                        item = dec_q.get(timeout=_POLL)
                    except queue.Empty:
                        if self._workers.stop.is_set():
                            raise Stopped from None
                        if pending:  # decoders are behind: keep inference busy with what is here
                            flush(max(pending, key=lambda k: len(pending[k])))
                        self._on_tick()
                        continue
                    if item is _END:
                        ended += 1
                        continue
                    key = self._group(item)  # type: ignore[arg-type]
                    pending.setdefault(key, []).append(item)  # type: ignore[arg-type]
                    n_pending += 1
                    if len(pending[key]) >= cfg.batch_size:
                        flush(key)
                    elif n_pending >= max_pending:
                        flush(max(pending, key=lambda k: len(pending[k])))
                while pending:
                    flush(next(iter(pending)))
            except KeyboardInterrupt:
                # Ctrl-C or stop(): no new items; what was inferred is still written below
                self.interrupted = True
                self.stop.set()
                pending.clear()
            for _ in encoders:
                self._workers.put(enc_q, _END)
            for t in encoders:
                while t.is_alive():
                    t.join(_POLL)
            self._on_tick()
        except Stopped:
            pass
        except KeyboardInterrupt:  # a second Ctrl-C while the last files are written: quit now
            self._workers.stop.set()
            self.interrupted = True
        except BaseException as e:
            self._workers.fail(e)
        finally:
            if self._workers.errors or self.interrupted:
                self._workers.stop.set()
            self.stop.set()
            for t in threads + encoders:
                t.join(1.0)
        self._workers.raise_error()
