"""One stage runner for `ccv convert` and `ccv video`: source -> decode -> batch (by shape key) ->
infer -> encode + sink, threads joined by bounded queues, so memory stays flat however many files
or frames there are.

    feeder thread    iterates the source (image jobs; or a video's demuxed, decoded frames and the
                     audio/subtitle packets that pass through)
    decode workers   ``decode(job) -> item`` (none for a video: its source decodes in order)
    calling thread   groups items by ``shape_key`` and runs ``infer(batch)``; pass-through items
                     skip it
    encode workers   ``encode(item)``: encodes and hands to the sink (writes a file, muxes a frame)

The stages are plain callables with no knowledge of threads, so another executor (Ray Data, issue
16) can drive the same ``decode``/``infer``/``encode``.

- Per-item problems are raised by stage functions as ``ItemFailed``: reported, and the run goes on.
- Anything else raised in a worker stops every stage and is re-raised in the calling thread.
- ``stop`` (an Event) or Ctrl-C stops taking new items; with ``on_interrupt="finish"`` items already
  inferred are still encoded and written, then ``run`` returns with ``interrupted`` set (a second
  Ctrl-C abandons them); with ``"raise"`` everything stops and the KeyboardInterrupt is re-raised.
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
    decode_workers: int = 2  # 0: the source yields decoded items (a video's demuxer decodes in order)
    encode_workers: int = 2  # 1 keeps the items in order (a video's frames)
    batch_size: int = 1
    max_pending: int = 0  # decoded items held while batches fill; 0 = 2 * batch_size
    queue_items: int = 0  # items each queue holds; 0: sized from the workers and the batch
    on_interrupt: str = "finish"  # finish: write what was inferred, then return; raise: stop now, re-raise
    progress_every_s: float = 0.0  # on_tick at most this often (the last one always)


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
    ``group(D)`` (the shape key); ``encode(R)``. Items for which ``passthrough(D)`` is true skip
    batching and inference and go to ``encode`` as they are. ``on_failed(job, message)`` for items
    that failed (any stage, called from any thread); ``on_tick(final)`` from the calling thread as
    work completes (throttled by ``progress_every_s``; ``final`` once at the end)."""

    def __init__(self, config: PipelineConfig, decode: Optional[Callable[[T], D]],
                 infer: Callable[[list[D]], Sequence[R]], encode: Callable[[R], None], group: Callable[[D], Hashable],
                 on_failed: Callable[[T, str], None], job_of: Callable[[D], T],
                 on_tick: Callable[..., None] = lambda final=False: None, stop: Optional[threading.Event] = None,
                 passthrough: Optional[Callable[[D], bool]] = None):
        if decode is None and config.decode_workers:
            raise ValueError("decode_workers must be 0 when the source yields decoded items")
        if config.on_interrupt not in ("finish", "raise"):
            raise ValueError(f"on_interrupt {config.on_interrupt!r}: use finish or raise")
        self.cfg = config
        self._decode, self._infer, self._encode, self._group = decode, infer, encode, group
        self._on_failed, self._job_of, self._on_tick = on_failed, job_of, on_tick
        self._passthrough = passthrough or (lambda item: False)
        self._last_tick = 0.0
        self.stop = stop or threading.Event()  # graceful: take no new items
        self._workers = ThreadGroup()  # its stop flag is fatal: everything quits now
        self._lock = threading.Lock()
        self.stats = PipelineStats(StageStats(max(1, config.decode_workers)), StageStats(1),
                                   StageStats(config.encode_workers))
        self.interrupted = False

    def _account(self, stage: StageStats, t0: float, n: int = 1) -> None:
        with self._lock:
            stage.items += n
            stage.busy_s += time.perf_counter() - t0

    # -- stages ------------------------------------------------------------------------------------
    def _feed(self, jobs: Iterable[T], in_q: queue.Queue) -> None:
        """Jobs to the decode workers; or, with none, the source's decoded items straight to
        batching (the time spent in the source is then the decode stage's)."""
        ends = self.cfg.decode_workers or 1
        try:
            source = iter(jobs)
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    job = next(source)
                except StopIteration:
                    break
                if not self.cfg.decode_workers and not self._passthrough(job):  # type: ignore[arg-type]
                    self._account(self.stats.decode, t0)
                self._workers.put(in_q, job)
        finally:
            for _ in range(ends):
                try:
                    self._workers.put(in_q, _END)
                except Stopped:
                    break

    def tick(self, final: bool = False) -> None:
        now = time.perf_counter()
        if final or now - self._last_tick >= self.cfg.progress_every_s:
            self._last_tick = now
            self._on_tick(final)

    def _decoder(self, in_q: queue.Queue, dec_q: queue.Queue) -> None:
        while True:
            job = self._workers.get(in_q)
            if job is _END:
                break
            if self.stop.is_set():
                continue  # drain without work, so the feeder is never blocked
            if self._passthrough(job):  # type: ignore[arg-type]
                self._workers.put(dec_q, job)
                continue
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
            if self._passthrough(item):  # type: ignore[arg-type]
                self._encode(item)  # type: ignore[arg-type]  (a packet to copy: no work to count)
                continue
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
        """Runs ``jobs`` (the source) through the stages; returns when all are written, or stopped."""
        cfg = self.cfg
        dec_q: queue.Queue = queue.Queue(maxsize=cfg.queue_items or cfg.batch_size + cfg.decode_workers)
        in_q: queue.Queue = queue.Queue(maxsize=cfg.queue_items or 2 * cfg.decode_workers) if cfg.decode_workers else dec_q
        enc_q: queue.Queue = queue.Queue(maxsize=cfg.queue_items or 2 * cfg.encode_workers)
        threads = [self._workers.start(lambda: self._feed(jobs, in_q), "ccv-feed")]
        threads += [self._workers.start(lambda: self._decoder(in_q, dec_q), f"ccv-decode-{i}") for i in range(cfg.decode_workers)]
        encoders = [self._workers.start(lambda: self._encoder(enc_q), f"ccv-encode-{i}") for i in range(cfg.encode_workers)]
        try:
            try:
                self._batch_and_infer(dec_q, enc_q)
            except KeyboardInterrupt:
                if cfg.on_interrupt == "raise":
                    self._workers.stop.set()
                    raise
                # Ctrl-C or stop(): no new items; what was inferred is still written below
                self.interrupted = True
                self.stop.set()
            for _ in encoders:
                self._workers.put(enc_q, _END)
            for t in encoders:
                while t.is_alive():
                    t.join(_POLL)
                    self.tick()
            self._workers.raise_error()
            self.tick(final=True)
        except Stopped:
            pass
        except KeyboardInterrupt:  # a second Ctrl-C while the last files are written: quit now
            self._workers.stop.set()
            self.interrupted = True
            if cfg.on_interrupt == "raise":
                raise
        except BaseException as e:
            self._workers.fail(e)
        finally:
            if self._workers.errors or self.interrupted:
                self._workers.stop.set()
            self.stop.set()
            for t in threads + encoders:
                t.join(1.0)
        self._workers.raise_error()

    def _batch_and_infer(self, dec_q: queue.Queue, enc_q: queue.Queue) -> None:
        """The calling thread: items grouped by shape key into batches, each batch inferred as
        soon as it is full, or when the decoders fall behind (inference is never left idle)."""
        cfg = self.cfg
        max_pending = cfg.max_pending or 2 * cfg.batch_size
        pending: dict[Hashable, list[D]] = {}
        ended = 0

        def flush(key: Hashable) -> None:
            self._run_batch(pending.pop(key), enc_q)
            self.tick()

        def fullest() -> Hashable:
            return max(pending, key=lambda k: len(pending[k]))

        while ended < (cfg.decode_workers or 1):
            if self.stop.is_set():
                raise KeyboardInterrupt  # the same clean stop as Ctrl-C
            try:
                item = dec_q.get(timeout=_POLL)
            except queue.Empty:
                if self._workers.stop.is_set():
                    raise Stopped from None
                if pending:  # decoders are behind: keep inference busy with what is here
                    flush(fullest())
                self.tick()
                continue
            if item is _END:
                ended += 1
                continue
            if self._passthrough(item):  # type: ignore[arg-type]
                self._workers.put(enc_q, item)
                continue
            key = self._group(item)  # type: ignore[arg-type]
            pending.setdefault(key, []).append(item)  # type: ignore[arg-type]
            if len(pending[key]) >= cfg.batch_size:
                flush(key)
            elif sum(map(len, pending.values())) >= max_pending:
                flush(fullest())
        while pending:
            flush(next(iter(pending)))
