"""Worker threads for :mod:`cnnlab.fast`: a batch split across cores, one BLAS thread per part.

numpy hands a matrix product to its BLAS library, which runs it on every core; but everything
around the products (copying windows, adding shifted slices, transposing) runs on one core. For a
layer with several images it is faster to give each core its own share of the images and run the
whole layer for that share on that core, matrix products included, with the BLAS on one thread.
PyTorch's float64 CPU convolution does the same in its forward and input-gradient passes
(``at::parallel_for`` over the images, each thread's matrix products on that thread).

That needs the BLAS to stay on one thread while the parts run. OpenBLAS has
``openblas_set_num_threads``, which is process-wide: a parallel call sets it to 1 and puts the old
value back when it ends, so a BLAS call made meanwhile by another thread runs on one thread (slower,
never wrong). Parallel calls take turns (one lock), so they never undo each other's setting. The
library must be numpy's own (see :func:`choose_openblas`: the pip wheels' copy, or the only OpenBLAS
loaded when numpy reports being built with OpenBLAS). With any other BLAS (MKL, Accelerate), or
where the library cannot be found (no ``/proc``), :func:`get_num_threads` is 1 and the layer stays on
its serial path. A part that calls :func:`parallel_map` runs that call as a plain loop; Ctrl-C during
a call is raised once every part has finished; a forked child starts its own threads.

The number of threads follows the BLAS's own (``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, the
cores), unless ``CNNLAB_NUM_THREADS`` or :func:`set_num_threads` says otherwise.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["choose_openblas", "get_num_threads", "on_each_worker", "parallel_map", "set_num_threads"]


def choose_openblas(paths: set[str], numpy_dir: str, numpy_blas: str) -> list[str]:
    """Which of the loaded OpenBLAS libraries (``paths``) can be numpy's own.

    ``numpy_dir`` is numpy's package directory and ``numpy_blas`` the BLAS name numpy was built with.
    A library in numpy's own tree (the pip wheels' ``numpy.libs/``) is numpy's. Otherwise a single
    OpenBLAS is numpy's only when numpy says it uses OpenBLAS (conda-forge: ``$PREFIX/lib``): other
    packages, scipy for one, load their own copy, whose thread count does not govern numpy's products.
    """
    paths = {p for p in paths if p.startswith("/")}
    own = sorted(p for p in paths if p.startswith(os.path.dirname(numpy_dir) + os.sep + "numpy"))
    if own:
        return own
    return sorted(paths) if len(paths) == 1 and "openblas" in numpy_blas.lower() else []


class _Blas:
    """Get and set the thread count of the OpenBLAS that numpy is using."""

    def __init__(self, path: str, get: Callable[[], int], set_: Callable[[int], None]) -> None:
        self.path, self.get, self.set = path, get, set_
        self.saved: int | None = None  # the count to restore, while a parallel call runs

    @staticmethod
    def find() -> _Blas | None:
        """The OpenBLAS that numpy loaded (found in /proc/self/maps, so Linux only), or None."""
        import numpy  # loads the BLAS library, if numpy was not imported yet

        try:
            with open("/proc/self/maps") as maps:
                paths = {line.split(None, 5)[-1].strip() for line in maps if "openblas" in line.lower()}
        except OSError:
            return None
        try:
            numpy_blas = str(numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"])
        except Exception:  # an older numpy, or a layout we do not know
            numpy_blas = ""
        numpy_dir = os.path.dirname(os.path.abspath(numpy.__file__))
        # scipy-openblas (numpy's pip wheels) prefixes and suffixes the names; plain OpenBLAS does not.
        names = [
            (f"{p}_get_num_threads{s}", f"{p}_set_num_threads{s}")
            for p in ("scipy_openblas", "openblas")
            for s in ("64_", "_64", "")
        ]
        for path in choose_openblas(paths, numpy_dir, numpy_blas):
            try:
                lib = ctypes.CDLL(path)  # already loaded: this only looks it up
            except OSError:
                continue
            for get_name, set_name in names:
                get, set_ = getattr(lib, get_name, None), getattr(lib, set_name, None)
                if get is not None and set_ is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    set_.restype, set_.argtypes = None, [ctypes.c_int]
                    return _Blas(path, get, set_)
        return None

    def threads(self) -> int:
        """The BLAS's thread count outside parallel calls (inside one it is 1 for the moment)."""
        saved = self.saved
        return saved if saved is not None else self.get()

    @contextmanager
    def one_thread(self) -> Iterator[None]:
        """The BLAS on one thread for the block (callers hold the pool's lock: one block at a time)."""
        self.saved = self.get()
        if self.saved != 1:
            self.set(1)
        try:
            yield
        finally:
            if self.saved != 1:
                self.set(self.saved)
            self.saved = None


def _work(tasks: queue.SimpleQueue) -> None:
    """A worker thread's loop: run each task and report what it returned or raised."""
    while True:
        fn, index, arg, done = tasks.get()
        _inside.active = True
        try:
            done.put((index, True, fn(arg)))
        except BaseException as error:  # reported to the caller, which re-raises it
            done.put((index, False, error))
        finally:
            _inside.active = False
        del fn, arg  # drop references to the caller's arrays while idle


# Set in a thread while it runs a part: a parallel_map from inside a part runs as a plain loop
# (the pool is busy with the outer call; waiting for it would deadlock).
_inside = threading.local()


class _Pool:
    """Daemon worker threads; a call runs the parts the workers cannot take in the calling thread."""

    def __init__(self, blas: _Blas) -> None:
        self.blas = blas
        self.lock = threading.Lock()
        self.queues: list[queue.SimpleQueue] = []

    def grow(self, workers: int) -> None:
        """Start threads until there are ``workers``; RuntimeError if one cannot be started."""
        while len(self.queues) < workers:
            tasks: queue.SimpleQueue = queue.SimpleQueue()
            name = f"cnnlab-fast-{len(self.queues) + 1}"
            threading.Thread(target=_work, args=(tasks,), name=name, daemon=True).start()
            self.queues.append(tasks)

    def map(self, fn: Callable[[Any], Any], args: Sequence[Any], on_workers_only: bool = False) -> list[Any]:
        if on_workers_only and len(args) > len(self.queues):
            raise ValueError(f"{len(args)} parts for {len(self.queues)} workers")
        mine = 0 if on_workers_only else max(1, len(args) - len(self.queues))
        own, rest = list(args[:mine]), list(args[mine:])
        with self.lock, self.blas.one_thread():
            done: queue.SimpleQueue = queue.SimpleQueue()
            for index, (tasks, arg) in enumerate(zip(self.queues, rest, strict=False)):
                tasks.put((fn, index, arg, done))
            _inside.active = True
            try:
                first = [fn(arg) for arg in own]
            finally:
                _inside.active = False
                # Wait for every part, even when ours failed or Ctrl-C arrives meanwhile: no part may
                # still be writing into the caller's arrays after this call has returned.
                outcomes, interrupted = [], False
                while len(outcomes) < len(rest):
                    try:
                        outcomes.append(done.get())
                    except KeyboardInterrupt:
                        interrupted = True
                if interrupted:
                    raise KeyboardInterrupt
            outcomes.sort(key=lambda outcome: outcome[0])
            for _, ok, value in outcomes:
                if not ok:
                    raise value
            return first + [value for _, _, value in outcomes]


_state: dict[str, Any] = {"threads": None, "pool": None, "blas": None, "probed": False, "cap": None}
_state_lock = threading.Lock()


def _blas() -> _Blas | None:
    if not _state["probed"]:
        _state["blas"], _state["probed"] = _Blas.find(), True
    return _state["blas"]


def get_num_threads() -> int:
    """How many threads :mod:`cnnlab.fast` splits a batch over (1: no split).

    :func:`set_num_threads` if it was called, else ``CNNLAB_NUM_THREADS`` if set, else the BLAS's own
    thread count; always 1 when numpy's BLAS is not an OpenBLAS this module can control.
    """
    blas = _blas()
    if blas is None:
        return 1
    chosen = _state["threads"]
    if chosen is None:
        env = os.environ.get("CNNLAB_NUM_THREADS", "").strip()
        chosen = int(env) if env.isdigit() and int(env) >= 1 else blas.threads()
    if _state["cap"] is not None:  # set when threads could not be started
        chosen = min(chosen, _state["cap"])
    return max(1, int(chosen))


def set_num_threads(n: int | None) -> None:
    """Split batches over ``n`` threads from now on (1: never); ``None`` goes back to the default."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be an integer >= 1 or None, got n={n!r}")
    _state["threads"] = n


def parallel_map(fn: Callable[[Any], Any], args: Sequence[Any]) -> list[Any]:
    """``[fn(a) for a in args]``, the parts at once on separate threads, each with a one-thread BLAS.

    At most :func:`get_num_threads` parts. Falls back to a plain loop when only one thread is
    available or the threads cannot be started (a tight memory limit, say). An exception raised by
    a part is re-raised here, after every part has finished.
    """
    pool = _pool(len(args)) if len(args) > 1 and not getattr(_inside, "active", False) else None
    if pool is None:
        return [fn(arg) for arg in args]
    return pool.map(fn, args)


def on_each_worker(fn: Callable[[Any], Any]) -> list[Any]:
    """Run ``fn(None)`` once on every worker thread that exists (none are started for this)."""
    pool = _state["pool"]
    if pool is None or not pool.queues:
        return []
    return pool.map(fn, [None] * len(pool.queues), on_workers_only=True)


def _pool(parts: int) -> _Pool | None:
    """The pool, grown to ``parts - 1`` workers if it can be; None if it has no worker at all."""
    blas = _blas()
    if blas is None:
        return None
    with _state_lock:
        if _state["pool"] is None:
            _state["pool"] = _Pool(blas)
        pool = _state["pool"]
        if len(pool.queues) < parts - 1 and _state["cap"] is None:
            with pool.lock:
                try:
                    pool.grow(parts - 1)
                except RuntimeError:  # "can't start new thread": a memory or process limit
                    _state["cap"] = len(pool.queues) + 1  # use what there is, and stop trying
        return pool if pool.queues else None


def _forget_pool_after_fork() -> None:
    """A forked child has no worker threads: make it start its own. If the fork happened during a
    parallel call (in another thread), the child's BLAS is still on one thread: restore it."""
    global _state_lock
    _state["pool"] = None
    _state_lock = threading.Lock()
    blas = _state["blas"]
    if blas is not None and blas.saved is not None:
        if blas.saved != 1:
            blas.set(blas.saved)
        blas.saved = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
