"""cnnlab.fast on several threads: a batch split into runs of images, one BLAS thread per run.

Large layers split their batch over ``get_num_threads()`` threads (``cnnlab/_internal/threads.py``). These
tests force the split on small layers (``MIN_PARALLEL_FLOPS`` = 1) and check, against the loop
reference, every route of the layer with 2 and 3 threads, uneven splits, tiny chunks, both strides;
that the parts really run on different threads with the BLAS on one thread meanwhile, and its
thread count restored after; that a failing part is re-raised only once every part has finished;
that the worker threads' workspaces are counted and cleared; that a forked child still works.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time

import numpy as np
import pytest
from test_fast import EXACT, _check_against_loop_reference, rel_error

from autograder.reference import load_reference

ref = load_reference()
fast = importlib.import_module(f"{ref.__name__}.fast")
threads = importlib.import_module(f"{ref.__name__}._internal.threads")

blas = threads._blas()
needs_blas = pytest.mark.skipif(blas is None, reason="numpy's BLAS is not an OpenBLAS cnnlab can control")


def test_numpy_pip_wheels_openblas_is_found():
    """On Linux with numpy's own scipy-openblas (the pip wheels, CI), the split must be available:
    otherwise every test below would be skipped and the layer silently stay serial."""
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if sys.platform != "linux" or config.get("name") != "scipy-openblas":
        pytest.skip(f"numpy's BLAS here is {config.get('name')} on {sys.platform}")
    assert blas is not None
    assert "numpy" in blas.path, f"found {blas.path}, not numpy's own OpenBLAS"


@pytest.fixture
def split(monkeypatch):
    """Split every call of the layer over ``n`` threads; returns a setter."""
    monkeypatch.setattr(fast, "MIN_PARALLEL_FLOPS", 1)

    def use(n: int) -> None:
        fast.set_num_threads(n)

    yield use
    fast.set_num_threads(None)


@needs_blas
@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("chunk_bytes", [1, 2**22])
@pytest.mark.parametrize(("C", "K"), [(2, 5), (8, 11), (4, 4), (5, 2)])  # every backward route
def test_split_batch_equals_loop_reference(split, monkeypatch, n_threads, chunk_bytes, C, K):
    split(n_threads)
    monkeypatch.setattr(fast, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(C * 10 + K + n_threads)
    # N=1 (no split), N=2 and N=5 (uneven parts), stride 1 (shifted rows) and 2 (im2col)
    for N, H, W, FH, FW, stride, pad in [
        (1, 7, 6, 3, 3, 1, 1),
        (2, 9, 7, 3, 2, 1, 1),
        (5, 6, 8, 3, 3, 1, 0),
        (5, 9, 8, 3, 2, 2, 1),
    ]:
        x, w, b = rng.normal(size=(N, C, H, W)), rng.normal(size=(K, C, FH, FW)), rng.normal(size=K)
        Ho, Wo = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
        _check_against_loop_reference(x, w, b, stride, pad, rng.normal(size=(N, K, Ho, Wo)))


def _spy_on_parts(monkeypatch) -> list[tuple[str, str, int, int]]:
    """Record (pass, thread name, images, BLAS threads) for every part the layer runs."""
    seen: list[tuple[str, str, int, int]] = []
    for name in ("_forward_stride1", "_backward_stride1"):
        original = getattr(fast, name)

        def spy(x, *args, _original=original, _name=name):
            if _name == "_backward_stride1":  # (dout, x, ...): the images are the second argument
                images = args[0].shape[0]
            else:
                images = x.shape[0]
            seen.append((_name, threading.current_thread().name, images, blas.get()))
            return _original(x, *args)

        monkeypatch.setattr(fast, name, spy)
    return seen


@needs_blas
def test_parts_run_on_separate_threads_with_one_blas_thread(split, monkeypatch):
    split(3)
    seen = _spy_on_parts(monkeypatch)
    before = blas.get()
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=(7, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    _check_against_loop_reference(x, w, b, 1, 1, rng.normal(size=(7, 4, 6, 6)))
    for name in ("_forward_stride1", "_backward_stride1"):
        parts = [(thread, n, count) for pass_, thread, n, count in seen if pass_ == name]
        assert sorted(n for _, n, _ in parts) == [2, 2, 3], f"{name}: 7 images in runs of 2, 2 and 3"
        assert len({thread for thread, _, _ in parts}) == 3, f"{name}: parts ran on {parts}"
        assert [count for _, _, count in parts] == [1, 1, 1], f"{name}: BLAS threads during the parts"
    assert blas.get() == before, "the BLAS thread count was not restored"


def test_batch_parts_cover_the_batch_evenly(monkeypatch):
    monkeypatch.setattr(fast, "get_num_threads", lambda: 4)
    monkeypatch.setattr(fast, "MIN_PARALLEL_FLOPS", 10)
    for N in range(1, 12):
        for flops, most in [(5, 1), (25, 2), (10**6, 4)]:  # at least MIN_PARALLEL_FLOPS per part
            parts = fast._batch_parts(N, flops)
            assert len(parts) == min(N, most)
            assert parts[0].start == 0 and parts[-1].stop == N
            assert all(a.stop == b.start for a, b in zip(parts, parts[1:], strict=False))
            sizes = [p.stop - p.start for p in parts]
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1, (N, sizes)


@needs_blas
def test_a_failing_part_is_raised_after_every_part_has_finished(split):
    split(2)
    finished = []

    def part(i):
        if i == 0:
            raise ValueError("part 0 failed")
        time.sleep(0.2)
        finished.append(i)
        return i

    with pytest.raises(ValueError, match="part 0 failed"):
        threads.parallel_map(part, [0, 1])
    assert finished == [1], "parallel_map returned while a part was still running"

    def worker_fails(i):
        if i == 1:
            raise KeyError("worker")
        return i

    with pytest.raises(KeyError, match="worker"):
        threads.parallel_map(worker_fails, [0, 1])
    assert threads.parallel_map(lambda i: i * i, [2, 3]) == [4, 9], "the pool still works"


@needs_blas
def test_workspace_counts_and_clears_the_worker_threads(split):
    split(2)
    fast.clear_workspace()
    rng = np.random.default_rng(2)
    x, w, b = rng.normal(size=(4, 3, 10, 10)), rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)
    fast.conv2d_forward(x, w, b, 1, 1)
    own = sum(buf.nbytes for buf in fast._workspace.buffers.values())
    assert fast.workspace_nbytes() > own > 0, "the worker thread's buffers are not counted"
    fast.clear_workspace()
    assert fast.workspace_nbytes() == 0


@needs_blas
def test_two_user_threads_splitting_at_once(split, monkeypatch):
    """Parallel calls from two threads take turns: every part runs with the BLAS on one thread."""
    split(2)
    seen = _spy_on_parts(monkeypatch)
    rng = np.random.default_rng(3)
    jobs = []
    for N, C, H, K in [(4, 3, 12, 5), (3, 6, 9, 2)]:
        x, w, b = rng.normal(size=(N, C, H, H)), rng.normal(size=(K, C, 3, 3)), rng.normal(size=K)
        jobs.append((x, w, b, rng.normal(size=(N, K, H, H))))
    errors = []

    def run(job):
        try:
            for _ in range(10):
                _check_against_loop_reference(*job[:3], 1, 1, job[3])
        except BaseException as error:  # reported below
            errors.append(error)

    users = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in users:
        t.start()
    for t in users:
        t.join()
    assert not errors, errors
    assert len(seen) == 2 * 2 * 10 * 2, "every call was split in two"
    assert {count for *_, count in seen} == {1}, "a part ran while the BLAS was multithreaded"


@needs_blas
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_forked_child_starts_its_own_threads(split):
    split(2)
    rng = np.random.default_rng(4)
    x, w, b = rng.normal(size=(4, 3, 8, 8)), rng.normal(size=(5, 3, 3, 3)), rng.normal(size=5)
    want = ref.conv.conv2d_forward(x, w, b, 1, 1)[0]
    fast.conv2d_forward(x, w, b, 1, 1)  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no threads behind it
        import signal

        signal.alarm(30)  # a hang would kill the child, not the test run
        ok = False
        try:
            ok = rel_error(fast.conv2d_forward(x, w, b, 1, 1)[0], want) < EXACT
        finally:
            os._exit(0 if ok else 3)  # the child must never return into pytest
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_set_num_threads_rejects_bad_values():
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=r"n must be an integer >= 1 or None"):
            fast.set_num_threads(bad)


@needs_blas
def test_environment_and_setter_choose_the_thread_count(monkeypatch):
    monkeypatch.setenv("CNNLAB_NUM_THREADS", "3")
    assert fast.get_num_threads() == 3
    fast.set_num_threads(1)
    try:
        assert fast.get_num_threads() == 1
    finally:
        fast.set_num_threads(None)
    monkeypatch.delenv("CNNLAB_NUM_THREADS")
    assert fast.get_num_threads() == blas.get(), "by default, as many threads as the BLAS uses"


@needs_blas
@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_fork_during_a_parallel_call_leaves_the_child_blas_as_it_was(split):
    """Another thread is inside a parallel call (BLAS set to 1) when this one forks."""
    split(2)
    before = blas.get()
    started, release = threading.Event(), threading.Event()

    def part(i):
        started.set()
        release.wait(10)  # the call lasts until the fork is done
        return i

    caller = threading.Thread(target=threads.parallel_map, args=(part, [0, 1]))
    caller.start()
    started.wait(10)
    try:
        assert blas.get() == 1, "the BLAS is on one thread during the call"
        pid = os.fork()
        if pid == 0:
            os._exit(0 if (blas.get(), threads.get_num_threads()) == (before, 2) else 3)
    finally:
        release.set()
    caller.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's BLAS stayed on one thread"


@needs_blas
def test_default_thread_count_is_the_blas_count_even_during_a_call():
    before = blas.get()
    seen = []
    threads.set_num_threads(2)
    try:
        threads.parallel_map(lambda i: seen.append((blas.get(), blas.threads())), [0, 1])
    finally:
        threads.set_num_threads(None)
    assert seen == [(1, before), (1, before)]


def test_choose_openblas_picks_numpy_own_copy():
    numpy_dir = "/env/site-packages/numpy"
    ours = "/env/site-packages/numpy.libs/libscipy_openblas64_-abc.so"
    scipys = "/env/site-packages/scipy.libs/libscipy_openblas-def.so"
    conda = "/env/lib/libopenblasp-r0.3.28.so"
    choose = threads.choose_openblas
    assert choose({ours, scipys}, numpy_dir, "scipy-openblas") == [ours]
    assert choose({scipys}, numpy_dir, "mkl-sdl") == [], "scipy's copy does not govern an MKL numpy"
    assert choose({scipys}, numpy_dir, "") == [], "unknown numpy BLAS: do not guess"
    assert choose({conda}, numpy_dir, "openblas") == [conda], "conda-forge: one shared OpenBLAS"
    assert choose({conda, scipys}, numpy_dir, "openblas") == [], "two candidates, none numpy's own"
    assert choose({"[heap]"}, numpy_dir, "openblas") == []


@needs_blas
def test_threads_that_cannot_start_leave_the_caller_doing_their_parts(split, monkeypatch):
    """A memory or process limit stops thread 2 from starting: the work still gets done, on the
    threads there are, and the layer does not try again on every call."""
    fresh = threads._Pool(blas)
    monkeypatch.setitem(threads._state, "pool", fresh)
    monkeypatch.setitem(threads._state, "cap", None)
    attempts = []
    real_start = threading.Thread.start

    def start(self):
        attempts.append(self.name)
        if len(attempts) > 1:
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    split(4)
    rng = np.random.default_rng(6)
    x, w, b = rng.normal(size=(5, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    for _ in range(3):
        _check_against_loop_reference(x, w, b, 1, 1, rng.normal(size=(5, 4, 6, 6)))
    assert len(fresh.queues) == 1 and len(attempts) == 2, attempts
    assert fast.get_num_threads() == 2, "capped at the caller and the one worker"
    assert threads.parallel_map(lambda i: i, [0, 1, 2]) == [0, 1, 2], "extra parts run in the caller"


@needs_blas
def test_a_parallel_call_inside_a_part_runs_as_a_loop(split):
    split(2)
    result = []

    def outer(i):
        return threads.parallel_map(lambda j: (i, j), [0, 1])

    caller = threading.Thread(target=lambda: result.append(threads.parallel_map(outer, [0, 1])), daemon=True)
    caller.start()
    caller.join(10)
    assert not caller.is_alive(), "deadlock: a nested parallel call waited for the busy pool"
    assert result == [[[(0, 0), (0, 1)], [(1, 0), (1, 1)]]]


@needs_blas
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_ctrl_c_waits_for_the_running_parts(split):
    """SIGINT while the caller waits for a worker: KeyboardInterrupt, but only once the part is done."""
    import signal

    split(2)
    finished = []

    def part(i):
        if i == 1:
            time.sleep(0.4)
            finished.append(i)
        return i

    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
    outcome = "returned"
    timer.start()
    try:
        threads.parallel_map(part, [0, 1])
        timer.join()
        time.sleep(0.2)  # a SIGINT that missed the call lands here, never outside the test
    except KeyboardInterrupt:
        outcome = "interrupted"
    timer.join()
    assert outcome == "interrupted", "Ctrl-C during the call was swallowed"
    assert finished == [1], "the interrupted call returned while a part was still running"
    assert blas.get() != 1 or threads._state["blas"].saved is None
