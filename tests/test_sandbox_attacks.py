"""The red team: hostile submissions graded by the real batch grader, each attack checked from outside.

One released course (``02_conv_layer``); honest victims are graded in the same batch, concurrently
with the attackers (two workers), in every sandbox mode: a fresh bubblewrap per child, children
forked by a zygote per worker, and the fallback (seccomp + Landlock + rlimits) that runs where
bubblewrap cannot. Every attack must fail to do harm, every
victim must keep full marks, and every attacker must get a saved row with a reason (never a grader
error). What each attack tries is in :data:`ATTACKS`; what is checked, in the tests below.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from autograder import batch, course, sandbox
from autograder.manifest import load_manifest
from autograder.reference import ROOT

sys.path.insert(0, str(Path(__file__).parent))
import course_env  # noqa: E402
import installs  # noqa: E402
from probes import PROBES  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's"),
    pytest.mark.skipif(
        shutil.which("nbgrader", path=str(Path(sys.executable).parent)) is None,
        reason="nbgrader is not installed in this environment",
    ),
]

A = "02_conv_layer"
CONV = "cnnlab/conv.py"
SECRET = "attack-test-secret"
VICTIMS = ("v_one", "v_two", "v_slow")
LIMITS = {"timeout": 6, "memory_mb": 600, "nproc": 32, "disk_mb": 64}
SLOW = """
_fast_forward, _fast_backward = conv2d_forward, conv2d_backward


def _work():  # an honest student's slow code: about 0.15 s of CPU per call
    total = 0
    for i in range(1_500_000):
        total += i
    return total


def conv2d_forward(x, w, b, stride=1, pad=0):
    _work()
    return _fast_forward(x, w, b, stride, pad)


def conv2d_backward(dout, cache):
    _work()
    return _fast_backward(dout, cache)
"""


def _conv() -> str:
    return course.reference_variant("conv", None, ())


def _at_import(body: str) -> str:
    """The released stub with ``body`` run when the module is imported (the tasks stay stubs)."""
    stub = (ROOT / "cnnlab" / "conv.py").read_text()
    return stub + "\n\n# --- the attack, at import ---\n" + textwrap.dedent(body) + "\n"


def _attack(body: str) -> str:
    """The released stub, with a ``conv2d_forward`` that runs ``body`` (Task 2.2 stays a stub)."""
    stub = (ROOT / "cnnlab" / "conv.py").read_text()
    code = "def conv2d_forward(x, w, b, stride=1, pad=0):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return stub + "\n\n# --- the attack ---\n" + code + "\n"


def _attacks(outside: Path, listen: dict[str, Any]) -> dict[str, str]:
    canary = outside / "canary.txt"
    binary = outside / "canary-bin"
    return {
        # 1. replace the runner (and plant numpy.py / sitecustomize.py) wherever it can write, then crash:
        #    the next child must not run any of it
        "a_runner": f"""
            import os, sys
            payload = "open({str(outside / "RUNNER-PWNED")!r}, 'w').write('pwned')\\n"
            places = {{os.getcwd(), os.path.dirname(os.path.abspath(__file__)), "/grader", "/sandbox"}}
            places |= {{p for p in sys.path if p}}
            for d in places:
                for name in ("_runner.py", "numpy.py", "sitecustomize.py", "cnnlab/__init__.py"):
                    try:
                        with open(os.path.join(d, name), "w") as fh:
                            fh.write(payload)
                    except OSError:
                        pass
            os._exit(1)
        """,
        # 2. metadata of files outside: setuid bit, mode, times, extended attributes
        "a_metadata": f"""
            import os
            for path in ({str(canary)!r}, {str(binary)!r}):
                for attempt in (
                    lambda: os.chmod(path, 0o6777),
                    lambda: os.utime(path, (0, 0)),
                    lambda: os.setxattr(path, "user.pwned", b"1"),
                    lambda: os.chown(path, 1000, 1000),
                ):
                    try:
                        attempt()
                    except OSError:
                        pass
            raise NotImplementedError("tried")
        """,
        # 3. other students: lower the limits of / stop / kill every other grading child it can see
        "a_neighbours": """
            import os, resource, signal, time
            for _ in range(30):
                for pid in os.listdir("/proc"):
                    if not pid.isdigit() or int(pid) == os.getpid():
                        continue
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as fh:
                            if b"_runner.py" not in fh.read():
                                continue
                    except OSError:
                        continue
                    for attempt in (
                        lambda: resource.prlimit(int(pid), resource.RLIMIT_AS, (1 << 20, 1 << 20)),
                        lambda: os.kill(int(pid), signal.SIGKILL),
                    ):
                        try:
                            attempt()
                        except OSError:
                            pass
                time.sleep(0.1)
            raise NotImplementedError("tried")
        """,
        # 4. the network: UDP, TCP, MPTCP, TCP Fast Open, a unix pathname socket, to listeners on loopback
        "a_network": f"""
            import socket
import subprocess
            UDP, TCP = {listen["udp"]}, {listen["tcp"]}
            tries = [
                lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", UDP)),
                lambda: socket.create_connection(("127.0.0.1", TCP), timeout=1).send(b"x"),
                lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).connect(("127.0.0.1", TCP)),
                lambda: socket.socket().sendto(b"x", 0x20000000, ("127.0.0.1", TCP)),  # MSG_FASTOPEN
                lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect({listen["unix"]!r}),
            ]
            for attempt in tries:
                try:
                    attempt()
                except OSError:
                    pass
            raise NotImplementedError("tried")
        """,
        # 5. the disk: 2 GiB in 32 MiB files, wherever it may write
        "a_disk": """
            import os
            written = 0
            chunk = b"x" * (1 << 20)
            for i in range(64):
                try:
                    with open(f"big{i}.bin", "wb") as fh:
                        for _ in range(32):
                            fh.write(chunk)
                            written += len(chunk)
                except OSError:
                    break
            raise NotImplementedError(f"wrote {written} bytes")
        """,
        # 6. a fork bomb (bounded: each process forks until refused, then sleeps)
        "a_forkbomb": """
            import os, time
            made = 0
            for _ in range(2000):
                try:
                    if os.fork() == 0:
                        time.sleep(30)
                        os._exit(0)
                    made += 1
                except OSError:
                    break
            raise NotImplementedError(f"forked {made}")
        """,
        # 7. forged frames on every descriptor: a case whose array has shape (-1, -1)
        "a_frames": """
            import json, os, struct
            header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (-1, -1), }"
            npy = b"\\x93NUMPY\\x01\\x00" + header.ljust(118) + b"\\n"
            npy += b"\\x00" * 8
            head = json.dumps({"kind": "case", "task": "2.1", "index": 0, "result": {"$nd": 0},
                               "args_after": None}).encode()
            payload = struct.pack(">II", len(head), 1) + head + struct.pack(">Q", len(npy)) + npy
            frame = struct.pack(">Q", len(payload)) + payload
            for fd in range(3, 64):
                try:
                    os.write(fd, frame)
                except OSError:
                    pass
            os._exit(0)
        """,
        # 8. memory the address-space limit does not see: memfd, /dev/shm, the tmpfs, shared mappings,
        #    System V segments (which outlive their creator without an IPC namespace)
        "a_memory": """
            import ctypes, mmap, os
            held, chunk, how = 0, b"x" * (1 << 20), []
            for name, make in (
                ("memfd", lambda: os.memfd_create("hog")),
                ("shm", lambda: os.open("/dev/shm/cnnlab-hog", os.O_CREAT | os.O_RDWR, 0o600)),
                ("tmpfs", lambda: os.open("hog.bin", os.O_CREAT | os.O_RDWR, 0o600)),
            ):
                try:
                    fd = make()
                    for _ in range(1024):
                        os.write(fd, chunk)
                        held += len(chunk)
                    how.append(name)
                except OSError:
                    pass
            libc = ctypes.CDLL(None, use_errno=True)
            for make in (lambda: libc.shmget(0x4E4E, 1 << 30, 0o1666), lambda: libc.msgget(0x4E4F, 0o1666),
                         lambda: libc.semget(0x4E50, 1, 0o1666)):
                if make() >= 0:
                    how.append("sysv")
            raise NotImplementedError(f"held {held} bytes by {how}")
        """,
        # 9. a per-user kernel quota shared with the grader: every inotify instance it can get
        "a_inotify": """
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            made = sum(1 for _ in range(200) if libc.inotify_init1(0) >= 0)
            raise NotImplementedError(f"made {made} inotify instances")
        """,
        # 10. the judge: a backward that writes into what its forward was given, on its own cache
        #     layout, after patching every judging function it can reach in its own process
        "a_judge": """
            raise NotImplementedError("see _JUDGE")
        """,
    }


JUDGE = """
import sys

_fast_forward, _fast_backward = conv2d_forward, conv2d_backward


def _patch_judges():
    for name, module in list(sys.modules.items()):
        if hasattr(module, "same_values"):
            module.same_values = lambda a, b: True


def conv2d_forward(x, w, b, stride=1, pad=0):
    out, cache = _fast_forward(x, w, b, stride, pad)
    return out, {"cache": cache, "x": x}  # another cache layout, used consistently


def conv2d_backward(dout, cache):
    _patch_judges()
    grads = _fast_backward(dout, cache["cache"])
    cache["x"][...] = 0  # writes into the forward's input
    return grads
"""
# at import: busy processes in sessions of their own (refused), then busy threads (one core at most)
CPU_HOG = """
import os, threading
import numpy as np

_made = 0
for _ in range(4):
    try:
        if os.fork() == 0:
            os.setsid()
            while True:
                pass
        _made += 1
    except OSError:
        break


def _spin():
    a = np.ones(1_000_000)
    while True:
        np.sqrt(a, out=a)  # a ufunc loop without the GIL: each thread a core, were it allowed


for _ in range(6):
    try:
        threading.Thread(target=_spin, daemon=True).start()
    except RuntimeError:
        break


def conv2d_forward(x, w, b, stride=1, pad=0):
    import time

    time.sleep(60)  # while the threads spin
"""


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Canary files outside every sandbox (a text file and a copy of an executable)."""
    folder = tmp_path_factory.mktemp("outside")
    folder.chmod(0o755)
    (folder / "canary.txt").write_text("canary")
    shutil.copy(shutil.which("true") or "/bin/true", folder / "canary-bin")
    (folder / "canary-bin").chmod(0o755)
    os.utime(folder / "canary.txt", (1_700_000_000, 1_700_000_000))
    return folder


@pytest.fixture(scope="module")
def listeners(outside: Path) -> Any:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    unix_path = str(outside / "listener.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(unix_path)
    os.chmod(unix_path, 0o777)
    unix.listen(8)
    for s in (udp, tcp, unix):
        s.setblocking(False)
    ports = {"udp": udp.getsockname()[1], "tcp": tcp.getsockname()[1], "unix": unix_path}
    yield ports, (udp, tcp, unix)
    for s in (udp, tcp, unix):
        s.close()


@pytest.fixture(scope="module")
def course_root(tmp_path_factory: pytest.TempPathFactory, outside: Path, listeners: Any) -> Path:
    root = tmp_path_factory.mktemp("course")
    with course_env.course(root, SECRET):
        manifest = load_manifest()
        course.release(root, {A: manifest[A]}, log=lambda _: None)
        for student in VICTIMS:
            text = _conv() + (SLOW if student == "v_slow" else "")
            batch.fabricate_submission(root, student, manifest[A], {CONV: text})
        for student, body in _attacks(outside, listeners[0]).items():
            batch.fabricate_submission(root, student, manifest[A], {CONV: _attack(body)})
        batch.fabricate_submission(root, "a_judge", manifest[A], {CONV: _conv() + JUDGE})
        batch.fabricate_submission(root, "a_cpu", manifest[A], {CONV: _at_import(CPU_HOG)})
        yield root


@pytest.fixture(scope="module", params=["bubblewrap", "fallback", "zygote"])
def graded(request: pytest.FixtureRequest, course_root: Path, outside: Path) -> tuple[str, dict[str, Any]]:
    """The whole class graded by the real batch grader in one sandbox mode: a fresh bubblewrap per
    child (``--zygote off``), the fallback, or children forked by a zygote per worker."""
    mode_name = request.param
    sandbox_env = "fallback" if mode_name == "fallback" else "bubblewrap"
    zygote_env = "on" if mode_name == "zygote" else "off"
    with course_env.environment(CNNLAB_SANDBOX=sandbox_env, CNNLAB_ZYGOTE=zygote_env):
        sandbox.sandbox_mode.cache_clear()
        mode = sandbox.sandbox_mode()
        if mode_name in ("bubblewrap", "zygote") and not mode.bwrap:
            pytest.skip(f"bubblewrap cannot run here: {mode.advice}")
        if mode_name == "zygote" and not mode.zygote:
            pytest.skip(f"no zygote here: {mode.advice}")
        if mode_name == "fallback" and not (mode.landlock and mode.seccomp):
            pytest.skip("the fallback needs Landlock and seccomp")
        before = _host_state()
        options = batch.Options(
            workers=2,
            limits=sandbox.Limits(**LIMITS),
            progress=False,
            log=lambda _: None,
            gradebook=False,
            force=True,
            out=course_root / f"out-{mode_name}",
        )
        result = batch.grade_assignment(A, course_root, options)
        after = _host_state()
        alone = {}
        for victim in VICTIMS:  # each honest student graded alone: the rows to match
            options.students, options.workers, options.out = [victim], 1, course_root / f"alone-{mode_name}"
            alone[victim] = batch.grade_assignment(A, course_root, options).rows[0]
    sandbox.sandbox_mode.cache_clear()
    rows = {r["student"]: r for r in result.rows}
    return mode_name, rows | {f"alone:{v}": r for v, r in alone.items()} | {
        "host": {"before": before, "after": after}
    }


ATTACK_IPC_KEYS = {0x4E4E, 0x4E4F, 0x4E50}  # the System V keys a_memory asks for


def _host_state() -> dict[str, Any]:
    """What a child could leave behind on the host: the attacker's System V IPC objects, control
    groups whose grader process is gone, the use of /dev/shm. (Other graders may run at the same
    time: only what can be ours is counted.)"""
    from autograder.sandbox import cgroups

    keys = set()
    for kind in ("shm", "msg", "sem"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]:
                keys.add(int(line.split()[0]))
    layout = cgroups.detect()
    stale = []
    for folder in set(layout.folders.values()) if layout else ():
        for entry in os.scandir(folder):
            pid = cgroups.owner(entry.name)
            if entry.is_dir() and pid is not None and not Path(f"/proc/{pid}").exists():
                stale.append(entry.path)
    return {
        "ipc": sorted(keys & ATTACK_IPC_KEYS),
        "cgroups": stale,
        "shm": shutil.disk_usage("/dev/shm").used,
    }


def _students(rows: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rows.items() if not k.startswith("alone:") and k != "host"}


def test_every_attacker_has_a_saved_row_and_victims_keep_full_marks(
    graded: tuple[str, dict[str, Any]], course_root: Path
) -> None:
    mode, rows = graded
    for student, row in _students(rows).items():
        assert row["grader_error"] is None, (mode, student, row["grader_error"])
        saved = json.loads((course_root / f"out-{mode}" / "results" / f"{student}.json").read_text())
        assert saved["total"] == row["total"]
        if student.startswith("a_") and student != "a_judge":  # a_judge's forward is right (5 points)
            assert row["total"] == 0.0, (mode, student, row["reason"])
            assert row["reason"] != "ok"
    for victim in VICTIMS:
        assert rows[victim]["total"] == 10.0, (mode, victim, rows[victim]["reason"])


def test_a_replaced_runner_never_runs(graded: tuple[str, dict[str, Any]], outside: Path) -> None:
    mode, rows = graded
    assert not (outside / "RUNNER-PWNED").exists(), mode
    row = rows["a_runner"]
    assert row["tasks"]["2.1"]["status"] == "crashed"
    # Task 2.2 ran in a new child, on the pristine runner: the stub's own NotImplementedError
    assert row["tasks"]["2.2"]["summary"] == "not implemented", row["tasks"]["2.2"]


def test_files_outside_keep_mode_times_owner_and_attributes(
    graded: tuple[str, dict[str, Any]], outside: Path
) -> None:
    mode, _ = graded
    canary, binary = outside / "canary.txt", outside / "canary-bin"
    assert stat.S_IMODE(canary.stat().st_mode) == 0o644 or not canary.stat().st_mode & 0o6000, mode
    assert not binary.stat().st_mode & (stat.S_ISUID | stat.S_ISGID), mode
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    assert canary.stat().st_mtime == 1_700_000_000
    assert canary.stat().st_uid == os.getuid() and binary.stat().st_uid == os.getuid()
    for path in (canary, binary):
        assert "user.pwned" not in os.listxattr(path)


def test_the_network_is_out_of_reach(graded: tuple[str, dict[str, Any]], listeners: Any) -> None:
    mode, rows = graded
    assert (
        rows["a_network"]["tasks"]["2.1"]["summary"] == "not implemented" or rows["a_network"]["total"] == 0
    )
    udp, tcp, unix = listeners[1]
    with pytest.raises(BlockingIOError):
        udp.recvfrom(16)
    for server in (tcp, unix):
        with pytest.raises(BlockingIOError):
            server.accept()


def _raised(row: dict[str, Any]) -> str:
    return " ".join(row["tasks"]["2.1"]["messages"])


def test_the_disk_is_bounded(graded: tuple[str, dict[str, Any]]) -> None:
    mode, rows = graded
    task = rows["a_disk"]["tasks"]["2.1"]
    message = _raised(rows["a_disk"])
    found = re.search(r"wrote (\d+) bytes", message)
    if mode in ("bubblewrap", "zygote"):  # the tmpfs is full at 64 MiB: the writes fail, the code goes on
        assert found and int(found.group(1)) <= 64 * 2**20, message
    else:  # the parent watches the folder and stops the child past 64 MiB
        assert task["status"] == "crashed" and "wrote more than 64 MB to disk" in message, task


def test_a_fork_bomb_is_contained(graded: tuple[str, dict[str, Any]]) -> None:
    mode, rows = graded
    message = _raised(rows["a_forkbomb"])
    found = re.search(r"forked (\d+)", message)
    if found:  # else the bomb was stopped before it could say (killed at the time limit)
        assert int(found.group(1)) < 32, message
    for victim in VICTIMS:
        assert rows[victim]["total"] == 10.0


def test_forged_frames_are_the_attackers_failure(graded: tuple[str, dict[str, Any]]) -> None:
    _, rows = graded
    task = rows["a_frames"]["tasks"]["2.1"]
    assert task["points"] == 0.0 and task["status"] in ("ok", "protocol", "crashed"), task
    assert rows["a_frames"]["grader_error"] is None


def test_the_neighbours_are_out_of_reach(graded: tuple[str, dict[str, Any]]) -> None:
    mode, rows = graded
    for victim in VICTIMS:
        assert rows[victim]["tasks"]["2.1"]["status"] == "ok", (mode, rows[victim]["reason"])
        assert rows[victim]["total"] == 10.0


def test_a_forged_timestamp_in_a_zip_is_ignored(course_root: Path, tmp_path: Path) -> None:
    """The submission time comes from the LMS (the times CSV, Canvas's LATE mark), never the zip."""
    manifest = load_manifest()
    released = course_root / "release" / A
    zips = tmp_path / "zips"
    zips.mkdir()
    with zipfile.ZipFile(zips / "zeta_LATE_1_2_work.zip", "w") as zf:
        for path in released.rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(released).as_posix())
        zf.writestr("timestamp.txt", "2000-01-01 00:00:00.000000 UTC\n")
    with zipfile.ZipFile(zips / "omega.zip", "w") as zf:
        for path in released.rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(released).as_posix())
        zf.writestr("timestamp.txt", "2000-01-01 00:00:00.000000 UTC\n")
    times = tmp_path / "times.csv"
    times.write_text("student,submitted_at\nomega,2026-11-27T09:30:00Z\n")
    intakes = batch.intake_zips(zips, course_root, manifest[A], times=batch.read_times(times))
    assert all(i.rejected is None for i in intakes)
    options = batch.Options(
        workers=1,
        limits=sandbox.Limits(timeout=10, memory_mb=600),
        progress=False,
        log=lambda _: None,
        gradebook=False,
        students=["zeta", "omega"],
        out=tmp_path / "out",
    )
    rows = {r["student"]: r for r in batch.grade_assignment(A, course_root, options).rows}
    assert rows["zeta"]["timestamp"] is None
    assert "LATE" in rows["zeta"]["time_source"]
    assert rows["omega"]["timestamp"].startswith("2026-11-27 09:30:00")
    assert "CSV" in rows["omega"]["time_source"]
    text = (tmp_path / "out" / "grades.csv").read_text()
    assert "2000-01-01" not in text and "submission-times CSV" in text


def test_the_dedicated_uid_check_skips_missing_path_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pythonXY.zip`` on ``sys.path`` does not exist: it must not veto the dedicated user ids."""
    from autograder.sandbox import confine

    missing = str(Path(sys.base_prefix) / "lib" / "python311.zip")
    monkeypatch.setattr(sys, "path", [missing, *sys.path])
    assert missing not in confine.child_sys_path()
    assert confine.readable_by_others(str(tmp_path)) is bool(
        all(p.stat().st_mode & 0o001 for p in tmp_path.parents) and tmp_path.stat().st_mode & 0o004
    )


DEDICATED = """
import json, os, sys
from pathlib import Path
from autograder import sandbox
mode = sandbox.sandbox_mode(bubblewrap=False)
probes = [("read", SECRET), ("write", OUTSIDE), ("signal", os.getpid()), ("chown", 0), ("connect", 9)]
spec = sandbox.TaskSpec("1.1", "conv", "conv_output_size", probes)
box = sandbox.Sandbox(Path(RELEASE), sandbox.Limits(timeout=30, memory_mb=600), slot=3, mode=mode)
[outcome], info = box.run(sandbox.Work({"cnnlab/conv.py": CONV_TEXT.encode()}, [spec], {}, ["conv"]))
print(json.dumps({"uid": mode.uid, "description": mode.description, "hello": info.get("hello"),
                  "got": [value if isinstance(value, str) else repr(value) for value, _ in outcome.cases],
                  "status": outcome.status, "error": outcome.error}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="dedicated user ids are for a grader that runs as root")
def test_the_fallback_with_dedicated_user_ids(tmp_path: Path) -> None:
    """The fallback on a machine whose Python other users can read: a copy of this interpreter (the
    one here lives under a private home), its site-packages this virtualenv's. Each child runs as
    its own user id (64000 + slot), confined, and reaches nothing of the grader's."""
    from autograder.sandbox import confine

    with installs.public_python() as (python, env):
        secret_file = tmp_path / "secret.txt"
        secret_file.write_text("s3cret")
        tmp_path.chmod(0o755)
        conv = (ROOT / "cnnlab" / "conv.py").read_text() + "\n" + PROBES
        script = DEDICATED.replace("SECRET", repr(str(secret_file))).replace(
            "OUTSIDE", repr(str(tmp_path / "x"))
        )
        script = script.replace("RELEASE", repr(str(ROOT / "cnnlab"))).replace("CONV_TEXT", repr(conv))
        run = subprocess.run(
            [str(python), "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["uid"] == confine.UID_BASE, found["description"]
    assert found["hello"]["uid"] == confine.UID_BASE + 3, found
    assert found["got"] and all(v in ("EACCES", "EPERM", "ENOENT", "ESRCH") for v in found["got"]), found
    assert not (tmp_path / "x").exists()


def _same_grade(row: dict[str, Any]) -> dict[str, Any]:
    return {t: (r["points"], r["status"], r["passed"], r["messages"]) for t, r in row["tasks"].items()}


def test_honest_grades_are_the_same_as_graded_alone(graded: tuple[str, dict[str, Any]]) -> None:
    """Beside busy threads and processes, memory hogs and the rest, an honest student's grade is the
    one it gets alone: budgets count each child's own CPU time, and a child gets one core at most."""
    mode, rows = graded
    for victim in VICTIMS:
        assert _same_grade(rows[victim]) == _same_grade(rows[f"alone:{victim}"]), (mode, victim)
        assert rows[victim]["total"] == 10.0, (mode, victim, rows[victim]["reason"])


def test_student_code_starts_no_process_and_gets_one_core(graded: tuple[str, dict[str, Any]]) -> None:
    mode, rows = graded
    row = rows["a_cpu"]
    assert row["grader_error"] is None and row["total"] == 0.0, row["reason"]
    task = row["tasks"]["2.1"]  # its spinning threads used up its own CPU time; graded again alone
    assert task["status"] == "timeout" and "CPU time" in task["error"], task
    assert any("graded again alone" in p for p in row["problems"]), row["problems"]


def test_memory_outside_the_address_space_is_refused_or_counted(graded: tuple[str, dict[str, Any]]) -> None:
    mode, rows = graded
    row = rows["a_memory"]
    message = _raised(row)
    found = re.search(r"held (\d+) bytes by \[(.*?)\]", message)
    if found:  # else the kernel stopped it at its cgroup's memory limit
        assert int(found.group(1)) <= (LIMITS["memory_mb"] + LIMITS["disk_mb"]) * 2**20, message
        assert "memfd" not in found.group(2) and "shm" not in found.group(2).split(", "), message
        assert "sysv" not in found.group(2), message
    else:
        assert row["tasks"]["2.1"]["status"] in ("memory", "crashed"), row["tasks"]["2.1"]
    host = rows["host"]
    assert host["after"]["shm"] - host["before"]["shm"] < LIMITS["memory_mb"] * 2**20


def test_no_kernel_quota_of_the_grader_can_be_exhausted(graded: tuple[str, dict[str, Any]]) -> None:
    mode, rows = graded
    message = _raised(rows["a_inotify"])
    assert "made 0 inotify instances" in message, message
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(0)  # the grader's own user still has its instances
    assert fd >= 0
    os.close(fd)


def test_every_judging_decision_is_the_parents(graded: tuple[str, dict[str, Any]]) -> None:
    """A backward that writes into its forward's input on its own cache layout, after patching every
    ``same_values`` in its process, earns nothing: the parent compares what came back."""
    mode, rows = graded
    task = rows["a_judge"]["tasks"]["2.2"]
    assert task["points"] == 0.0, (mode, task["messages"])
    assert rows["a_judge"]["tasks"]["2.1"]["points"] == 5.0  # its forward pass is right


def test_each_mode_grades_as_it_says(graded: tuple[str, dict[str, Any]]) -> None:
    """The victims' children ran in the mode under test (a zygote's child says so in its hello)."""
    mode, rows = graded
    for victim in VICTIMS:
        hello = rows[victim]["sandbox"]["hello"]
        assert hello.get("zygote", False) is (mode == "zygote"), (mode, hello)
        assert hello["namespaced"] is (mode != "fallback"), (mode, hello)


def test_nothing_is_left_behind(graded: tuple[str, dict[str, Any]]) -> None:
    mode, rows = graded
    host = rows["host"]
    assert host["after"]["ipc"] == [], (mode, host["after"]["ipc"])
    assert host["after"]["cgroups"] == [], (mode, host["after"]["cgroups"])
    assert not Path("/dev/shm/cnnlab-hog").exists()
