"""The zygote mode of the sandbox: what one job could leave for, or learn about, the next.

Each test runs a student's ``conv_output_size`` that probes its sandbox (one probe per case), in
children forked by the slot's zygote (:mod:`autograder.sandbox.zygote`), and checks from outside.
The red team's attacks run in this mode too (``tests/test_sandbox_attacks.py``, mode ``zygote``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from autograder import sandbox
from autograder.reference import ROOT
from autograder.sandbox import cgroups, zygotes

sys.path.insert(0, str(Path(__file__).parent))
import course_env  # noqa: E402
import installs  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's"),
]

CONV = "cnnlab/conv.py"
PROBES = '''
import errno, os, random, signal, sys

import numpy as np


def _errno(exc):
    return errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__)


def conv_output_size(probe, *args):
    """Each case runs one probe and returns what it found, as data."""
    if probe == "random":
        fresh = float(np.random.default_rng().random())
        return [float(x) for x in np.random.rand(4)] + [random.random(), fresh]
    if probe == "patch":  # what a job could leave for the next: a module, a global, files
        np.zeros = lambda *a, **k: "patched"
        np.pwned = True
        sys.modules["os"].environ["PWNED"] = "1"
        written = []
        for path in ("/sandbox/left.txt", "/tmp/left.txt", "/left.txt", "/grader/left.txt"):
            try:
                with open(path, "w") as fh:
                    fh.write("left")
                written.append(path)
            except OSError:
                pass
        return written
    if probe == "left":  # what the next job finds
        places = ("/sandbox/left.txt", "/tmp/left.txt", "/left.txt", "/grader/left.txt")
        found = [p for p in places if os.path.exists(p)]
        return {"files": found, "numpy": hasattr(np, "pwned") or np.zeros(1).tolist() != [0.0],
                "environ": os.environ.get("PWNED")}
    if probe == "zygote":  # find, read, signal and trace the processes outside this one
        seen = {"proc": None, "kill": [], "pid": os.getpid(), "ppid": os.getppid()}
        try:
            seen["proc"] = sorted(os.listdir("/proc"))
        except OSError as exc:
            seen["proc"] = _errno(exc)
        for pid in range(2, 400):
            try:
                os.kill(pid, signal.SIGKILL)
                seen["kill"].append(pid)
            except OSError:
                pass
        try:
            os.kill(-1, signal.SIGKILL)  # every process it may signal (not itself)
        except OSError:
            pass
        seen["group"] = os.getpgid(0) == os.getpid()  # its own process group: kill(0) is itself
        for path in ("/proc/1/environ", "/proc/2/mem", "/grader/_zygote.py"):
            try:
                with open(path, "rb") as fh:
                    fh.read(1)
                seen[path] = "read"
            except OSError as exc:
                seen[path] = _errno(exc)
        return seen
    if probe == "pyc":  # the released modules were imported from their checked-hash .pyc
        import importlib.util
        import cnnlab.pool as layers

        cached = importlib.util.cache_from_source(layers.__file__)
        return {"cached": os.path.exists(cached), "spec": layers.__spec__.cached == cached}
    if probe == "uid map":
        try:
            with open("/proc/self/uid_map") as fh:
                return [os.getuid(), fh.read().split()]
        except OSError as exc:
            return [os.getuid(), _errno(exc)]
    if probe == "crash":
        os._exit(7)
    if probe == "spin":
        while True:
            pass
    if probe == "fork":
        try:
            return os.fork()
        except OSError as exc:
            return _errno(exc)
    if probe == "unshare":
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        out = []
        for flags in (0x10000000, 0x00020000, 0x20000000, 0x40000000):
            out.append(libc.unshare(flags) == 0 or errno.errorcode.get(ctypes.get_errno()))
        mounted = libc.mount(b"none", b"/sandbox", b"tmpfs", 0, None)
        out.append(mounted == 0 or errno.errorcode.get(ctypes.get_errno()))
        return out
    return 2 * args[0] if args else None
'''


@pytest.fixture(scope="module")
def mode() -> sandbox.SandboxMode:
    with course_env.environment(CNNLAB_SANDBOX="bubblewrap", CNNLAB_ZYGOTE=None):
        sandbox.sandbox_mode.cache_clear()
        found = sandbox.sandbox_mode()
    sandbox.sandbox_mode.cache_clear()
    if not found.zygote:
        pytest.skip(f"no zygote here: {found.advice}")
    return found


def _run(mode: sandbox.SandboxMode, *cases: tuple[Any, ...], slot: int = 0, timeout: float = 10) -> Any:
    box = sandbox.Sandbox(ROOT / "cnnlab", sandbox.Limits(timeout=timeout, memory_mb=600), slot, mode)
    spec = sandbox.TaskSpec("1.1", "conv", "conv_output_size", list(cases))
    [outcome], info = box.run(sandbox.Work({CONV: PROBES.encode()}, [spec], {}, ["conv"]))
    return outcome, info


def _values(outcome: Any) -> list[Any]:
    return [value for value, _ in outcome.cases]


def test_a_job_runs_in_a_zygote_child_with_every_layer(mode: sandbox.SandboxMode) -> None:
    outcome, info = _run(mode, ("double", 21))
    assert _values(outcome) == [42], outcome
    hello = info["hello"]
    assert hello["zygote"] is True and hello["pid"] == 1, hello  # PID 1 of its own namespace
    assert hello["caps"] == "0" * 16 and hello["seccomp"] == "2" and hello["landlock"] >= 1, hello
    assert info["zygote"] == info["children"] == 1


def test_the_zygote_cannot_be_seen_read_or_signalled(mode: sandbox.SandboxMode) -> None:
    _run(mode, ("double", 1))
    zygote = zygotes._ZYGOTES[(os.getpid(), 0)]
    jobs = zygote.jobs
    outcome, _ = _run(mode, ("zygote",))
    [seen] = _values(outcome)
    assert seen["proc"] == "ENOENT", seen  # no /proc: not the zygote's, not its own
    assert seen["kill"] == [], seen  # no process but itself to signal (it is PID 1)
    assert seen["pid"] == 1 and seen["ppid"] == 0 and seen["group"], seen
    assert seen["/proc/1/environ"] == "ENOENT" and seen["/proc/2/mem"] == "ENOENT", seen
    assert seen["/grader/_zygote.py"] == "ENOENT", seen  # its root has the release only
    assert zygote.alive() and zygotes._ZYGOTES[(os.getpid(), 0)] is zygote  # the same zygote, unharmed
    assert zygote.jobs == jobs + 1


def test_nothing_of_a_job_survives_into_the_next(mode: sandbox.SandboxMode) -> None:
    first, _ = _run(mode, ("patch",))
    [written] = _values(first)
    assert written == ["/sandbox/left.txt"], written  # its own tmpfs only
    second, info = _run(mode, ("left",))
    assert info["zygote"] == 1
    assert _values(second) == [{"files": [], "numpy": False, "environ": None}]


def test_two_jobs_get_different_random_streams(mode: sandbox.SandboxMode) -> None:
    streams = [_values(_run(mode, ("random",))[0])[0] for _ in range(2)]
    assert len(streams[0]) == 6
    assert all(a != b for a, b in zip(*streams, strict=True)), streams


def test_a_child_makes_no_process_namespace_or_mount(mode: sandbox.SandboxMode) -> None:
    outcome, _ = _run(mode, ("fork",), ("unshare",))
    fork, unshare = _values(outcome)
    assert fork == "EPERM", fork
    assert unshare == ["EPERM"] * 5, unshare  # the zygote's own calls are not the child's


def test_the_release_is_imported_from_checked_hash_pyc(mode: sandbox.SandboxMode) -> None:
    outcome, _ = _run(mode, ("pyc",))
    assert _values(outcome) == [{"cached": True, "spec": True}]
    cache = ROOT / "cnnlab" / "__pycache__"
    pyc = next(cache.glob(f"pool.{sys.implementation.cache_tag}.pyc"))
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b11, flags  # hash-based (1) and checked (2): valid after a copy, never stale


def test_after_a_crash_or_a_time_limit_the_rest_runs_in_fresh_children(mode: sandbox.SandboxMode) -> None:
    box = sandbox.Sandbox(ROOT / "cnnlab", sandbox.Limits(timeout=3, memory_mb=600), 0, mode)
    tasks = [
        sandbox.TaskSpec("1.1", "conv", "conv_output_size", [("crash",)]),
        sandbox.TaskSpec("x", "conv", "conv_output_size", [("spin",)]),
        sandbox.TaskSpec("y", "conv", "conv_output_size", [("double", 4)]),
    ]
    outcomes, info = box.run(sandbox.Work({CONV: PROBES.encode()}, tasks, {}, ["conv"]))
    assert [o.status for o in outcomes] == ["crashed", "timeout", "ok"], outcomes
    assert outcomes[1].limit == "cpu", outcomes[1]
    assert _values(outcomes[2]) == [8]
    assert info["children"] == 3 and info["zygote"] == 1, info  # the first only
    outcome, info = _run(mode, ("double", 5))  # the next submission: a new zygote
    assert _values(outcome) == [10] and info["zygote"] == 1


def test_the_zygote_is_restarted_every_n_jobs(
    mode: sandbox.SandboxMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zygotes, "RESTART_EVERY", 2)
    seen = []
    for _ in range(4):
        _run(mode, ("double", 1), slot=1)
        seen.append(zygotes._ZYGOTES[(os.getpid(), 1)].proc.pid)
    assert seen[0] == seen[1] != seen[2] == seen[3], seen


def test_one_cgroup_per_slot_and_none_left(mode: sandbox.SandboxMode) -> None:
    layout = mode.cgroup
    assert layout is not None
    _run(mode, ("double", 1), slot=2)
    _run(mode, ("double", 1), slot=2)
    mine = [
        entry.name
        for base in set(layout.folders.values())
        for entry in os.scandir(base)
        if entry.name.startswith(f"{os.getpid()}-")
    ]
    assert {name for name in mine if "-slot2-" in name} and not [n for n in mine if "-child-" in n], mine
    zygotes.close_all()
    cgroups.close_all()
    left = [
        entry.name
        for base in set(layout.folders.values())
        for entry in os.scandir(base)
        if entry.name.startswith(f"{os.getpid()}-")
    ]
    assert left == [], left


def test_zygote_off_means_fresh_children(mode: sandbox.SandboxMode) -> None:
    with course_env.environment(CNNLAB_SANDBOX="bubblewrap", CNNLAB_ZYGOTE="off"):
        sandbox.sandbox_mode.cache_clear()
        off = sandbox.sandbox_mode()
    sandbox.sandbox_mode.cache_clear()
    assert not off.zygote and "fresh bubblewrap per child" in off.description
    assert "zygote" in mode.description
    outcome, info = _run(dataclasses.replace(mode, zygote=False), ("double", 2))
    assert _values(outcome) == [4] and info["zygote"] == 0 and "zygote" not in info["hello"]


HOST_UID = """
import dataclasses, json, os
from pathlib import Path
from autograder import sandbox
from autograder.sandbox import protocol, zygotes
stopping = protocol.Child.stop
seen = set()


def stop(self):  # the uids of the child's processes, from outside, before they are stopped
    for pid in [] if self.cgroup is None or self.cgroup.group is None else self.cgroup.group.procs():
        try:
            with open(f"/proc/{pid}/status") as fh:
                seen.add(int(fh.read().split("Uid:")[1].split()[1]))
        except OSError:
            pass
    return stopping(self)


protocol.Child.stop = stop
mode = sandbox.sandbox_mode(bubblewrap=True)
found = {"host_uid": mode.host_uid, "description": mode.description, "zygote": mode.zygote}
for kind in ("fresh", "zygote"):
    box = sandbox.Sandbox(Path(RELEASE), sandbox.Limits(timeout=30, memory_mb=600), slot=3,
                          mode=dataclasses.replace(mode, zygote=kind == "zygote"))
    spec = sandbox.TaskSpec("1.1", "conv", "conv_output_size", [("uid map",)])
    [outcome], info = box.run(sandbox.Work({"cnnlab/conv.py": PROBES_TEXT.encode()}, [spec], {}, ["conv"]))
    found[kind] = {"values": [repr(v) for v, _ in outcome.cases], "zygote": info["zygote"]}
    found[kind]["processes"] = sorted(seen)
    seen.clear()
    if kind == "zygote":
        zygote = zygotes._ZYGOTES[(os.getpid(), 3)]
        uids = set()
        for pid in zygote.keep:
            with open(f"/proc/{pid}/status") as fh:
                uids.add(int(fh.read().split("Uid:")[1].split()[1]))  # effective
        found[kind]["outside"] = sorted(uids)
print(json.dumps(found))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a dedicated host uid is for a grader that runs as root")
def test_children_map_to_an_unprivileged_host_uid(tmp_path: Path) -> None:
    """On a machine whose Python other users can read (a copy of this interpreter: the one here
    lives under a private home), bubblewrap, the zygote and every child run as the slot's own
    unprivileged host uid (64000 + slot), uid 1000 inside, in both bubblewrap modes."""
    import subprocess

    from autograder.sandbox import confine

    with installs.public_python() as (python, env):
        script = HOST_UID.replace("RELEASE", repr(str(ROOT / "cnnlab"))).replace("PROBES_TEXT", repr(PROBES))
        env.pop("CNNLAB_ZYGOTE", None)
        env.pop("CNNLAB_SANDBOX", None)
        run = subprocess.run(
            [str(python), "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        found = json.loads(run.stdout.strip().splitlines()[-1])
    uid = confine.UID_BASE + 3
    assert found["host_uid"] == confine.UID_BASE, found["description"]
    assert f"host uid {confine.UID_BASE}+ outside, unprivileged" in found["description"]
    assert found["fresh"]["values"] == [repr([1000, "EACCES"])], found  # uid 1000 inside; Landlock
    assert found["fresh"]["zygote"] == 0 and found["fresh"]["processes"] == [uid], found
    if found["zygote"]:
        assert found["zygote"]["values"] == [repr([1000, "ENOENT"])], found  # no /proc in its root
        assert found["zygote"]["zygote"] == 1 and found["zygote"]["outside"] == [uid], found
        assert found["zygote"]["processes"] == [uid], found  # the zygote, its monitor and child
