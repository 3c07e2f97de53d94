"""The seccomp allow list: the system calls a grading child may make; every other one fails (EPERM).

How the list was measured: ``python -m tools.measure_syscalls`` grades the reference solution of
every assignment (every task's full hidden-case suite, the backward tasks' second run on the
student's own cache) and a submission that prints, raises and runs out of memory, each child under
``strace -f`` with seccomp off, and prints each system call the children made (43 on Debian 12,
CPython 3.11, numpy 2; Dec 2026). :data:`MEASURED` is that list less ``execve`` (start-up only,
:data:`STARTUP_ONLY`) and ``prlimit64`` (allowed on the child itself only); :data:`MARGIN` adds calls that
CPython or numpy make on paths the suite does not take and that reach nothing outside the child (the
clock, sleeping, its own signals and limits, files in its own folder). Anything else, among them
every way to make a process (``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD``; ``clone3``
answers ENOSYS so that glibc falls back to ``clone`` for threads), to run a program (``execve``
after start-up), sockets, System V IPC (``shmget``, ``msgget``, ``semget``), ``memfd_create``,
``inotify_init``, ``fanotify``, ``userfaultfd``, io_uring, ``ptrace``, ``mount``, ``setsid``,
namespaces, keys, BPF and changes of file modes, owners, times and attributes, fails with EPERM.

Three programs are made from the list (:func:`program`): the one bubblewrap loads before it starts
Python also allows ``execve`` (:data:`STARTUP_ONLY`, bubblewrap's own last step); the runner then
installs the strict one itself before any student code runs (filters stack: both apply), which is
the only one in the fallback, where the runner starts without a filter. A zygote's bubblewrap loads
the third, which adds :data:`ZYGOTE_ONLY` (``unshare``, ``mount``, ``pivot_root``, forks, the
control socket: what the zygote, its monitors and each child's setup need); each zygote child
installs the strict one over it before it reads its request, so none of those calls is the
grading child's. ``python -m tools.measure_syscalls --zygote`` measures the zygote's children from
that point on: 23 calls over the suite (Dec 2026), every one in :data:`ALLOWED`.
"""

from __future__ import annotations

import errno
import functools
import tempfile

# what the children of the full hidden-case suite called (tools/measure_syscalls.py)
MEASURED = (
    "access", "arch_prctl", "brk", "capset", "chdir", "close", "dup2", "exit_group", "fcntl",
    "fstat", "futex", "getdents64", "getpid", "getrandom", "gettid", "getuid", "ioctl",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lseek", "mbind",
    "mkdir", "mmap", "mprotect", "mremap", "munmap", "newfstatat", "openat", "prctl", "pread64",
    "read", "readlink", "rseq", "rt_sigaction", "sched_getaffinity", "set_robust_list",
    "set_tid_address", "sysinfo", "uname", "write",
)  # fmt: skip
# harmless calls of CPython and numpy on other paths: the clock, sleeping, reading its own state,
# files and folders inside its own writable folder (Landlock and the mounts decide which)
MARGIN = (
    "clock_gettime", "clock_getres", "clock_nanosleep", "gettimeofday", "nanosleep", "time",
    "sched_yield", "getcpu", "getppid", "geteuid", "getgid", "getegid", "getgroups", "getresuid",
    "getresgid", "getpgrp", "getpgid", "getsid", "getrusage", "times", "getpriority", "getrlimit",
    "getcwd", "fchdir", "umask", "stat", "lstat", "statx", "statfs", "fstatfs", "readlinkat",
    "faccessat", "faccessat2", "open", "creat", "mkdirat", "rmdir", "unlink", "unlinkat", "rename",
    "renameat", "renameat2", "readv", "writev", "pwrite64", "preadv", "pwritev", "ftruncate",
    "fsync", "fdatasync", "fadvise64", "flock", "dup", "dup3", "pipe", "pipe2", "close_range",
    "poll", "ppoll", "select", "pselect6", "sendfile", "copy_file_range", "getdents",
    "madvise", "mincore", "msync", "exit", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    "rt_sigsuspend", "restart_syscall", "tgkill", "tkill", "kill", "alarm", "setitimer",
    "getitimer", "set_mempolicy", "get_mempolicy",
)  # fmt: skip
ALLOWED = tuple(sorted(set(MEASURED) | set(MARGIN)))
CONDITIONAL = ("prlimit64", "clone")  # allowed on their arguments only: its own limits; threads
STARTUP_ONLY = ("execve", "wait4", "waitid")  # bubblewrap: its exec of Python, its init waiting for it
# the zygote, its monitors and each child's setup (before the child's own strict filter): fork a
# monitor and a child, make their namespaces, mount the child's root and pivot into it, set its uid,
# hand descriptors over the control socket; never in the grading child's filter
ZYGOTE_ONLY = (
    "unshare", "mount", "umount2", "pivot_root", "symlink", "symlinkat", "setresuid", "setresgid",
    "fork", "vfork", "pidfd_open", "pidfd_send_signal", "recvmsg", "sendmsg", "sendto", "recvfrom",
    "getsockopt", "getsockname", "setsid", "capget",
)  # fmt: skip
CLONE_THREAD = 0x00010000
NAMESPACES = 0x7E020000  # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET


@functools.lru_cache(maxsize=4)
def program(startup: bool = False, zygote: bool = False) -> bytes | None:
    """The seccomp program (BPF, as libseccomp exports it): the allow list, plus ``execve`` when
    ``startup`` (bubblewrap's), plus :data:`ZYGOTE_ONLY` and any ``clone`` when ``zygote`` (the
    zygote's bubblewrap); None without libseccomp (``pip install pyseccomp``, Debian
    ``libseccomp2``)."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError):
        return None
    f = sc.SyscallFilter(defaction=sc.ERRNO(errno.EPERM))
    extra = (STARTUP_ONLY if startup or zygote else ()) + (ZYGOTE_ONLY if zygote else ())
    for name in ALLOWED + extra:
        try:
            f.add_rule(sc.ALLOW, name)
        except (ValueError, RuntimeError, OSError):
            pass  # a system call this kernel or libseccomp does not know
    f.add_rule(sc.ALLOW, "prlimit64", sc.Arg(0, sc.EQ, 0))  # its own limits only
    if zygote:  # forks (the monitor, the child); namespaces are made by unshare
        f.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, NAMESPACES, 0))
    else:  # threads only: CLONE_THREAD set and no namespace flag
        f.add_rule(sc.ALLOW, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD | NAMESPACES, CLONE_THREAD))
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # flags out of a filter's reach: glibc uses clone
    with tempfile.TemporaryFile() as fh:
        f.export_bpf(fh)
        fh.seek(0)
        return fh.read()
