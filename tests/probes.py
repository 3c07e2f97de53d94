"""A student's function that probes its sandbox: each case tries one thing and returns what happened."""

PROBES = '''
import errno, os, socket

def conv_output_size(probe, arg, *rest):
    """Each case runs one probe and returns what happened, as text."""
    try:
        if probe == "read":
            with open(arg) as fh:
                fh.read()
        elif probe == "write":
            with open(arg, "w") as fh:
                fh.write("x")
        elif probe == "big file":
            with open("big.bin", "wb") as fh:
                fh.write(b"\\0" * arg)
        elif probe == "connect":
            socket.create_connection(("127.0.0.1", arg), timeout=2).close()
        elif probe == "signal":
            os.kill(arg, 0)
        elif probe == "chown":
            open("mine.txt", "w").close()
            os.chown("mine.txt", 1, 1)
        elif probe == "import":
            __import__(arg)
        elif probe == "memory":
            bytearray(arg)
        elif probe == "relative":  # climb from the working folder to the target's relative path
            with open("../" * 12 + arg.lstrip("/")) as fh:
                fh.read()
        elif probe == "proc cwd":  # any process's working folder, then the target below it
            for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
                try:
                    with open(f"/proc/{pid}/cwd/{arg}") as fh:
                        fh.read()
                    return "allowed"
                except OSError:
                    pass
            raise PermissionError(errno.EACCES, "nothing readable through /proc/*/cwd")
        elif probe == "inherited fds":  # descriptors the child did not open itself
            found = []
            for fd in range(3, 256):
                try:
                    target = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    continue
                if arg in target:
                    found.append(target)
            if not found:
                raise PermissionError(errno.EBADF, "no descriptor of the grader's")
        return "allowed"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    except BaseException as exc:
        return type(exc).__name__
'''
