"""One model shared by every stream and upload of ``python -m zoo serve``: :class:`Batcher` runs all
predictions on one model thread, batching those that arrive together, and :class:`SharedPredictor`
is the Predictor a stream is given, with every call going through that thread.
"""
import collections
import contextlib
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import ZooUserError


@dataclass
class _Request:
    audios: list
    texts: list
    names: list
    sample_rate: int | None
    future: Future


class Batcher:
    """Runs every prediction on one thread, batching the requests that arrive together.

    Callers that may submit work (a stream's ``push``, an upload) run inside :meth:`busy`; when a
    request arrives the thread waits, up to ``max_wait`` seconds, until every busy caller has
    either submitted or left, then runs all pending requests as one ``predict_batch`` per sample
    rate. A lone stream so waits for nothing; streams whose segments end together share a batch.
    """

    def __init__(self, predictor, max_wait: float = 0.02):
        self.predictor = predictor
        self.max_wait = max_wait
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._calls: list[Callable[[], None]] = []
        self._busy = 0
        self._closed = False
        #: the latest predict_batch calls: (requests merged into it, clips in it)
        self.batches: collections.deque[tuple[int, int]] = collections.deque(maxlen=1000)
        self.calls = 0  #: predict_batch calls made
        self._thread = threading.Thread(target=self._run, name="zoo-model", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def busy(self):
        with self._cond:
            self._busy += 1
        try:
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    def submit(self, audios: Sequence, texts: Sequence | None = None, *, sample_rate: int | None = None,
               names: Sequence[str] | None = None) -> list[dict]:
        """``predictor.predict_batch(audios, texts, sample_rate=..., skip_errors=True)``, run on the
        model thread together with whatever else is pending; blocks until it is done."""
        n = len(audios)
        texts = list(texts) if texts is not None else [None] * n
        names = list(names) if names is not None else [f"input {i}" for i in range(n)]
        req = _Request(list(audios), texts, names, sample_rate, Future())
        with self._cond:
            if self._closed:
                raise RuntimeError("the model thread has stopped")
            self._queue.append(req)
            self._cond.notify_all()
        return req.future.result()

    def call(self, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)`` on the model thread (anything else that touches the model)."""
        fut: Future = Future()

        def job():
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args, **kwargs))
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    fut.set_exception(e)
        with self._cond:
            self._calls.append(job)
            self._cond.notify_all()
        return fut.result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._queue or self._calls or self._closed):
                    self._cond.wait()
                if self._closed and not (self._queue or self._calls):
                    return
                calls, self._calls = self._calls, []
                if self._queue:
                    deadline = time.monotonic() + self.max_wait
                    # busy callers that have not submitted yet may be about to: wait for them
                    while len(self._queue) < self._busy and not self._closed:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                queue, self._queue = self._queue, []
            for job in calls:
                job()
            if queue:
                self._predict(queue)

    def _predict(self, queue: list[_Request]) -> None:
        by_rate: dict[int | None, list[_Request]] = {}
        for r in queue:
            by_rate.setdefault(r.sample_rate, []).append(r)
        for rate, reqs in by_rate.items():
            audios = [a for r in reqs for a in r.audios]
            try:
                self.batches.append((len(reqs), len(audios)))
                self.calls += 1
                out = self.predictor.predict_batch(
                    audios, [t for r in reqs for t in r.texts], sample_rate=rate,
                    names=[n for r in reqs for n in r.names], skip_errors=True)
            except BaseException as e:  # noqa: BLE001 - every waiting caller gets it
                for r in reqs:
                    r.future.set_exception(e)
                continue
            k = 0
            for r in reqs:
                r.future.set_result(out[k : k + len(r.audios)])
                k += len(r.audios)


class SharedPredictor:
    """What a stream is given as its model: the server's Predictor, with ``predict`` and
    ``predict_batch`` going through the :class:`Batcher` and any other method run on the model
    thread, so many streams can share one model safely. Attributes read through."""

    def __init__(self, predictor, batcher: Batcher):
        self._predictor = predictor
        self._batcher = batcher

    def predict(self, audio=None, text=None, *, sample_rate=None) -> dict:
        return self.predict_batch([audio], [text], sample_rate=sample_rate)[0]

    def predict_batch(self, audios, texts=None, *, sample_rate=None, progress=False, names=None,
                      skip_errors=False) -> list[dict]:
        out = self._batcher.submit(audios, texts, sample_rate=sample_rate, names=names)
        if not skip_errors:
            bad = next((r for r in out if "error" in r), None)
            if bad is not None:
                raise ZooUserError(bad["error"])
        return out

    def __getattr__(self, name):
        value = getattr(self._predictor, name)
        if callable(value) and not isinstance(value, type):
            return lambda *a, **kw: self._batcher.call(value, *a, **kw)
        return value

    def __repr__(self) -> str:
        return f"SharedPredictor({self._predictor!r})"
