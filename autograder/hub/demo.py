"""``make hub-demo`` (``python -m autograder.hub``): a class on a local JupyterHub, end to end.

Run as root on one Linux machine. Everything it makes lives in one work folder (``--work``, default a
new folder under the system's temporary directory) and is removed at the end unless ``--keep``:

1. **Users** (``useradd``, homes under ``<work>/home``): the course account ``<p>-grader`` (runs the
   course's formgrader and owns the course root, as ``grader-course101`` in nbgrader's
   ``demos/demo_multiple_classes``), one instructor ``<p>-instructor`` and ``--students`` students
   ``<p>-s01`` ... (default 30).
2. **The exchange** ``<work>/exchange`` (mode 1777: everyone may create, nobody may delete another's
   files) and a global ``nbgrader_config.py`` in ``<work>/etc/jupyter`` (on every account's
   ``JUPYTER_CONFIG_PATH``): the exchange root, ``path_includes_course``, and nbgrader's
   ``JupyterHubAuthPlugin`` (a student's courses are its hub groups ``nbgrader-<course>``).
3. **JupyterHub 6** on ``127.0.0.1`` (the default ``LocalProcessSpawner``, the ``dummy`` authenticator
   with one shared password, configurable-http-proxy from npm), the course ``cnnlab`` served as the
   hub service ``cnnlab`` run as ``<p>-grader`` (``jupyterhub-singleuser`` with the formgrader),
   reachable by the group ``formgrade-cnnlab`` (the instructor).
4. The round trip: the course account releases ``02_conv_layer`` (``python -m autograder release`` and
   ``nbgrader release_assignment``); every student fetches it, does the work and submits, as its own
   UNIX user (``runuser``, with its own hub API token); one student (``<p>-s01``) does it in Chromium
   through JupyterLab's Assignments tab; the course account collects (the submission times are the
   exchange's ``timestamp.txt``), grades with ``python -m autograder grade``, runs ``nbgrader
   generate_feedback`` and ``release_feedback``; every student fetches its feedback (``<p>-s01`` in
   Chromium).
5. It checks that every student was graded once, that nbgrader's gradebook holds the batch grader's
   scores, that each student's score is what its work earns, and that feedback is in every home;
   prints the grade table; cleans up (processes of the demo's users, the users, the work folder).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COURSE = "cnnlab"
ASSIGNMENT = "02_conv_layer"
PASSWORD = "cnnlab-demo"  # the dummy authenticator's shared password (a demo on 127.0.0.1 only)
MARKER = ".cnnlab-hub-demo"
JUPYTER_DATA = str(Path(sys.prefix) / "share" / "jupyter")  # nbconvert's templates, Lab's extensions
LIBRARY_PATH: list[str] = []  # LD_LIBRARY_PATH for a copied interpreter (public_python)
JUPYTER_ETC = str(Path(sys.prefix) / "etc" / "jupyter")  # nbgrader's server extensions, enabled
#: what the scripted students hand in, in turn: (label, tasks done, mistakes planted); the tasks of
#: "forward only" come from the task table (:func:`_forward_only`)
WORK_KINDS = [
    ("reference", None, ()),
    ("forward only", "forward", ()),  # every task of conv.py but the backward ones (_forward_only)
    ("untouched stubs", [], ()),
    ("flipped kernel", None, ("conv2d_flipped_kernel",)),
    ("no bias", None, ("conv2d_no_bias",)),
]


def _forward_only() -> list[str]:
    """The tasks of ``conv.py`` that are not a backward pass (from the task table)."""
    from autograder.reference import load_reference

    return [t for t, row in load_reference().tasks.TASKS.items() if row.module == "conv" and not row.forward]


class HubDemoError(Exception):
    """A step of the demo failed; the message says which and why."""


@dataclass
class Demo:
    work: Path
    prefix: str = "cnn"
    students: int = 30
    browser: bool = True
    keep: bool = False
    jobs: int = 4
    log: object = print
    t0: float = field(default_factory=time.monotonic)
    port: int = 0
    users: list[str] = field(default_factory=list)
    hub: subprocess.Popen | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    admin_token: str = ""
    service_token: str = ""

    # -- names and places ------------------------------------------------------------------------
    @property
    def grader(self) -> str:
        return f"{self.prefix}-grader"

    @property
    def instructor(self) -> str:
        return f"{self.prefix}-instructor"

    @property
    def student_names(self) -> list[str]:
        return [f"{self.prefix}-s{i:02d}" for i in range(1, self.students + 1)]

    venv_bin: Path = Path(sys.executable).parent  # the users' Python (see :func:`public_python`)

    def home(self, user: str) -> Path:
        return self.work / "home" / user

    @property
    def course_root(self) -> Path:
        return self.home(self.grader) / COURSE

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/hub/api"

    def config_path(self, *first: Path) -> str:
        """``JUPYTER_CONFIG_PATH``: ``first``, the demo's global nbgrader configuration, and this
        virtualenv's (where the extensions are enabled; an overlay has none of its own)."""
        return ":".join(map(str, [*first, self.work / "etc" / "jupyter", JUPYTER_ETC]))

    def say(self, text: str) -> None:
        self.log(f"[{time.monotonic() - self.t0:5.0f} s] {text}")

    def kind(self, student: str) -> tuple[str, list[str] | None, tuple[str, ...]]:
        return WORK_KINDS[(self.student_names.index(student)) % len(WORK_KINDS)]

    # -- processes ---------------------------------------------------------------------------------
    def env_for(self, user: str, config_path: str | None = None, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.home(user)),
            "USER": user,
            "LOGNAME": user,
            "SHELL": "/bin/bash",
            "PATH": f"{self.venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
            "JUPYTER_CONFIG_PATH": config_path or self.config_path(),
            "JUPYTER_PATH": JUPYTER_DATA,
            "LD_LIBRARY_PATH": ":".join(LIBRARY_PATH),
            "JUPYTERHUB_API_URL": self.api,
            "JUPYTERHUB_USER": user,
        }
        if user in self.tokens:
            env["JUPYTERHUB_API_TOKEN"] = self.tokens[user]
        if user == self.grader:  # the course's nbgrader configuration reads it
            env["CNNLAB_COURSE_ROOT"] = str(self.course_root)
        env.update(extra)
        return env

    def run_as(self, user: str, args: list[str], cwd: Path | None = None, **extra: str) -> str:
        """Run ``args`` as ``user`` (``runuser``, a clean environment); its output, or raise."""
        env = self.env_for(user, **extra)
        cmd = ["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *args]
        proc = subprocess.run(
            cmd, cwd=cwd or self.home(user), capture_output=True, text=True, timeout=900, check=False
        )
        if proc.returncode != 0:
            raise HubDemoError(
                f"{user}: {' '.join(args)} exited with {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc.stdout + proc.stderr

    def nbgrader(self, user: str, *args: str, cwd: Path | None = None) -> str:
        return self.run_as(user, [str(self.venv_bin / "nbgrader"), *args, f"--course={COURSE}"], cwd=cwd)

    def grader_run(self, *args: str) -> str:
        """A course command as the course account, in the repository (``python -m autograder ...``)."""
        return self.run_as(
            self.grader,
            [str(self.venv_bin / "python"), "-m", "autograder", *args],
            cwd=REPO,
            CNNLAB_COURSE_ROOT=str(self.course_root),
        )

    # -- 0. checks -------------------------------------------------------------------------------
    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise HubDemoError("the hub demo makes system users and runs a hub for them: run it as root")
        for tool in ("useradd", "userdel", "runuser"):
            if shutil.which(tool) is None:
                raise HubDemoError(f"{tool} is missing (Debian: apt-get install passwd util-linux)")
        for name in ("jupyterhub", "jupyterhub-singleuser", "nbgrader"):
            if not (self.venv_bin / name).exists():
                raise HubDemoError(
                    f"{self.venv_bin / name} is missing: make setup-dev installs the hub extra"
                )
        if proxy_command() is None:
            raise HubDemoError("configurable-http-proxy is missing: run `npm ci` (package.json) first")
        site = Path(sysconfig.get_path("purelib"))
        for path in (site, REPO / "autograder" / "nbgrader_config.py", REPO / "cnnlab"):
            if not readable_by_others(path):
                raise HubDemoError(
                    f"{path} is not readable by other users: the hub's users run this virtualenv's "
                    "packages and read the course's configuration; put the repository where every "
                    "user can read it"
                )
        for parent in self.work.resolve().parents:
            if not os.stat(parent).st_mode & 0o001:
                raise HubDemoError(f"{parent} is not searchable by other users: choose another --work")
        for user in [self.grader, self.instructor, *self.student_names]:
            with contextlib.suppress(KeyError):
                pwd.getpwnam(user)
                raise HubDemoError(f"user {user} exists already (a demo run with --keep? --cleanup WORK)")

    # -- 1. users ----------------------------------------------------------------------------------
    def make_users(self) -> None:
        (self.work / "home").mkdir(mode=0o755)
        for user in [self.grader, self.instructor, *self.student_names]:
            subprocess.run(
                [
                    "useradd",
                    "--create-home",
                    "--home-dir",
                    str(self.home(user)),
                    "--shell",
                    "/bin/bash",
                    "--user-group",
                    user,
                ],
                check=True,
                capture_output=True,
            )
            self.users.append(user)
            with open(self.work / "users.txt", "a") as fh:
                fh.write(user + "\n")
            os.chmod(self.home(user), 0o700)  # nobody reads another's home (the exchange is the way)
        self.say(
            f"users: {self.grader} (course account), {self.instructor}, {len(self.student_names)} students"
        )

    # -- 2. configuration --------------------------------------------------------------------------
    def write_config(self) -> None:
        etc = self.work / "etc"
        exchange = self.work / "exchange"
        exchange.mkdir()
        os.chmod(exchange, 0o1777)
        (etc / "jupyter").mkdir(parents=True)
        (etc / "jupyter" / "nbgrader_config.py").write_text(
            "# Every account's nbgrader: the shared exchange, one folder per course in it, and the\n"
            "# courses of a user from its JupyterHub groups (nbgrader-<course>, formgrade-<course>).\n"
            "from nbgrader.auth import JupyterHubAuthPlugin\n"
            "c = get_config()\n"
            f"c.Exchange.root = {str(exchange)!r}\n"
            "c.Exchange.path_includes_course = True\n"
            "c.Authenticator.plugin_class = JupyterHubAuthPlugin\n"
            f"c.NbGrader.course_titles = {{{COURSE!r}: 'cnnlab: CNNs from scratch'}}\n"
        )
        # the students' Lab: the Assignments tab and Validate, none of the instructor's tools
        student = etc / "student"
        (student / "labconfig").mkdir(parents=True)
        (student / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "ServerApp": {
                        "jpserver_extensions": {
                            "nbgrader.server_extensions.formgrader": False,
                            "nbgrader.server_extensions.course_list": False,
                            "nbgrader.server_extensions.assignment_list": True,
                            "nbgrader.server_extensions.validate_assignment": True,
                        }
                    },
                    "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
                },
                indent=1,
            )
        )
        (student / "labconfig" / "page_config.json").write_text(
            json.dumps(
                {
                    "disabledExtensions": {
                        "@jupyter/nbgrader:formgrader": True,
                        "@jupyter/nbgrader:create-assignment": True,
                        "@jupyter/nbgrader:course-list": True,
                        "@jupyterlab/apputils-extension:announcements": True,
                    }
                },
                indent=1,
            )
        )
        # the course account: the course root, and the course's own nbgrader configuration
        self.course_root.mkdir()
        jupyter_dir = self.home(self.grader) / ".jupyter"
        jupyter_dir.mkdir()
        (jupyter_dir / "nbgrader_config.py").write_text(
            "# The cnnlab course: the repository's configuration (manifest, hidden grading, feedback),\n"
            "# with this account's course root (CNNLAB_COURSE_ROOT is set by the hub service).\n"
            "c = get_config()\n"
            f"load_subconfig({str(REPO / 'autograder' / 'nbgrader_config.py')!r})\n"
            f"c.CourseDirectory.root = {str(self.course_root)!r}\n"
            f"c.CourseDirectory.course_id = {COURSE!r}\n"
        )
        grader = pwd.getpwnam(self.grader)
        for path in (self.course_root, jupyter_dir, jupyter_dir / "nbgrader_config.py"):
            os.chown(path, grader.pw_uid, grader.pw_gid)
        hub = self.work / "hub"
        hub.mkdir(mode=0o700)
        self.port = free_port()
        hub_port, api_port, service_port = free_port(), free_port(), free_port()
        self.admin_token, self.service_token = secrets.token_hex(32), secrets.token_hex(32)
        self.write_hub_config(hub / "jupyterhub_config.py", hub_port, api_port, service_port)

    def write_hub_config(self, path: Path, hub_port: int, api_port: int, service_port: int) -> None:
        student_path = self.config_path(self.work / "etc" / "student")
        common_env = {
            "JUPYTER_PATH": JUPYTER_DATA,
            "LD_LIBRARY_PATH": ":".join(LIBRARY_PATH),
            "PATH": f"{self.venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "MPLBACKEND": "Agg",
        }
        config = {
            "bind_url": self.url,
            "hub_ip": "127.0.0.1",
            "hub_port": hub_port,
            "api_port": api_port,
            "proxy": proxy_command(),
            "db": f"sqlite:///{path.parent / 'jupyterhub.sqlite'}",
            "cookie": str(path.parent / "jupyterhub_cookie_secret"),
            "instructor": self.instructor,
            "grader": self.grader,
            "students": self.student_names,
            "password": PASSWORD,
            "course": COURSE,
            "service_port": service_port,
            "service_token": self.service_token,
            "admin_token": self.admin_token,
            "singleuser": str(self.venv_bin / "jupyterhub-singleuser"),
            "student_env": {**common_env, "JUPYTER_CONFIG_PATH": student_path},
            "service_env": {
                **common_env,
                "JUPYTERHUB_DEFAULT_URL": "/lab",
                "JUPYTER_CONFIG_PATH": self.config_path(),
                "CNNLAB_COURSE_ROOT": str(self.course_root),
            },
            "grader_home": str(self.home(self.grader)),
        }
        template = (Path(__file__).with_name("jupyterhub_config.py")).read_text()
        path.write_text(f"DEMO = {json.dumps(config, indent=1)}\n\n{template}")

    # -- 3. the hub --------------------------------------------------------------------------------
    def start_hub(self) -> None:
        hub = self.work / "hub"
        log = open(hub / "jupyterhub.log", "w")  # noqa: SIM115 (open while the hub runs)
        self.hub = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(hub / "jupyterhub_config.py")],
            cwd=hub,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PATH": f"{self.venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}"},
        )
        (hub / "jupyterhub.pid").write_text(f"{self.hub.pid}\n")  # for --cleanup after --keep
        deadline = time.monotonic() + 180
        while True:
            if self.hub.poll() is not None:
                raise HubDemoError(f"JupyterHub exited with {self.hub.returncode}:\n{self.hub_log()}")
            with contextlib.suppress(OSError, HubDemoError):
                self.hub_api("GET", f"/services/{COURSE}")
                if self.service_up():
                    break
            if time.monotonic() > deadline:
                raise HubDemoError(
                    f"JupyterHub or the course service did not start in 180 s:\n{self.hub_log()}"
                )
            time.sleep(0.5)
        self.say(f"hub: JupyterHub {hub_version()} at {self.url} (course service {COURSE} as {self.grader})")

    def service_up(self) -> bool:
        info = self.hub_api("GET", f"/services/{COURSE}")
        url = info.get("url")
        if not url:
            return False
        try:
            with urllib.request.urlopen(f"{url}/services/{COURSE}/api/status", timeout=3):
                return True
        except urllib.error.HTTPError:
            return True  # it answers (403 without a token)
        except OSError:
            return False

    def hub_log(self) -> str:
        path = self.work / "hub" / "jupyterhub.log"
        return path.read_text()[-5000:] if path.exists() else ""

    def hub_api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.api}{path}", data=data, method=method)
        req.add_header("Authorization", f"token {token or self.admin_token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as err:
            raise HubDemoError(f"hub API {method} {path}: {err.code} {err.read().decode()[:300]}") from None
        return json.loads(text) if text else {}

    def make_tokens(self) -> None:
        """A hub API token per scripted account (what its single-user server would have): nbgrader's
        JupyterHubAuthPlugin asks the hub for the account's groups with it."""
        for user in [self.grader, *self.student_names]:
            made = self.hub_api(
                "POST", f"/users/{user}/tokens", {"note": "cnnlab hub demo", "expires_in": 7200}
            )
            self.tokens[user] = made["token"]

    # -- 4. the round trip ---------------------------------------------------------------------------
    def release(self) -> None:
        self.grader_run("release")
        self.nbgrader(self.grader, "release_assignment", ASSIGNMENT, cwd=self.course_root)
        self.say(f"released {ASSIGNMENT} into the exchange")

    def student_work(self, student: str) -> None:
        """Fetch, do the work, submit: as ``student``'s UNIX user."""
        self.nbgrader(student, "fetch_assignment", ASSIGNMENT)
        self.do_work(student)
        self.nbgrader(student, "submit", ASSIGNMENT)

    def prepare_work(self) -> None:
        """``<work>/staging/<kind>.py``: the ``cnnlab/conv.py`` of each kind of work (readable by all)."""
        from autograder.sample_students import reference_variant

        staging = self.work / "staging"
        staging.mkdir(mode=0o755)
        for i, (_, done, mistakes) in enumerate(WORK_KINDS):
            if done == "forward":
                done = _forward_only()
            if done != []:
                path = staging / f"kind{i}-conv.py"
                path.write_text(reference_variant("conv", done, list(mistakes)))
                path.chmod(0o644)

    def do_work(self, student: str) -> None:
        """Write the student's ``cnnlab/conv.py`` (as the student) from the kind of work it does."""
        i = self.student_names.index(student) % len(WORK_KINDS)
        staged = self.work / "staging" / f"kind{i}-conv.py"
        if staged.exists():  # else: the untouched release
            folder = self.home(student) / COURSE / ASSIGNMENT
            self.run_as(student, ["cp", str(staged), str(folder / "cnnlab" / "conv.py")])

    def scripted_students(self, students: list[str], action) -> None:
        with ThreadPoolExecutor(self.jobs) as pool:
            for future in [pool.submit(action, s) for s in students]:
                future.result()

    def collect_and_grade(self) -> str:
        self.nbgrader(self.grader, "collect", ASSIGNMENT, cwd=self.course_root)
        self.say(f"{self.grader} collected {ASSIGNMENT} from the exchange")
        out = self.grade()
        self.say("graded with python -m autograder grade")
        self.nbgrader(self.grader, "generate_feedback", ASSIGNMENT, cwd=self.course_root)
        self.nbgrader(self.grader, "release_feedback", ASSIGNMENT, cwd=self.course_root)
        return out

    def grade(self) -> str:
        """``python -m autograder grade``: as the course account when this virtualenv is public;
        as root when the users run it through :func:`public_python`'s overlay (the sandbox mounts
        the grader's own Python, not the overlay), the course root given back to the account after."""
        if self.venv_bin == Path(sys.executable).parent:
            return self.grader_run("grade", ASSIGNMENT, "--quiet")
        env = {**os.environ, "CNNLAB_COURSE_ROOT": str(self.course_root), "PYTHONDONTWRITEBYTECODE": "1"}
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        proc = subprocess.run(
            [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, "--quiet"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        subprocess.run(["chown", "-R", f"{self.grader}:{self.grader}", str(self.course_root)], check=True)
        if proc.returncode != 0:
            raise HubDemoError(
                f"python -m autograder grade exited with {proc.returncode}:\n{proc.stderr[-3000:]}"
            )
        return proc.stdout + proc.stderr

    def fetch_feedback(self, student: str) -> None:
        self.nbgrader(student, "fetch_feedback", ASSIGNMENT)

    # -- 5. checks -----------------------------------------------------------------------------------
    def check(self) -> list[dict[str, str]]:
        """Every student graded once with what its work earns, nbgrader's gradebook equal to the batch
        grader's scores, feedback in every home. Returns the batch grader's rows."""
        from autograder.manifest import load_manifest

        total = load_manifest()[ASSIGNMENT].total
        with open(self.course_root / "batch" / ASSIGNMENT / "grades.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        names = [r["student_id"] for r in rows]
        problems = []
        if sorted(names) != sorted(self.student_names):
            problems.append(f"graded {sorted(names)}, expected each of {self.student_names} once")
        gradebook = self.gradebook_scores()
        for row in rows:
            student, score = row["student_id"], float(row["total"])
            if gradebook.get(student) != score:
                problems.append(f"{student}: gradebook {gradebook.get(student)} != batch grader {score}")
            label, done, mistakes = self.kind(student)
            if label == "reference" and score != total:
                problems.append(f"{student} handed in the reference and got {score} of {total}")
            if label == "untouched stubs" and score != 0:
                problems.append(f"{student} handed in the stubs and got {score}")
            if label not in ("reference", "untouched stubs") and not 0 < score < total:
                problems.append(f"{student} ({label}) got {score} of {total}")
            if not row["submitted_at"] or "exchange" not in row["time_source"]:
                problems.append(
                    f"{student}: submission time {row['submitted_at']!r} from {row['time_source']!r}"
                )
            feedback = list((self.home(student) / COURSE / ASSIGNMENT / "feedback").glob("*/*.html"))
            if not feedback:
                problems.append(f"{student}: no feedback fetched into {self.home(student)}")
        if problems:
            raise HubDemoError("the round trip is wrong:\n  " + "\n  ".join(problems))
        return rows

    def grade_table(self, rows: list[dict[str, str]]) -> str:
        """The batch grader's points per task, nbgrader's gradebook score, the exchange's time."""
        from autograder.manifest import load_manifest
        from autograder.messages import text_table

        a = load_manifest()[ASSIGNMENT]
        gradebook = self.gradebook_scores()
        head = ["student", "work", *a.tasks, "total", "gradebook", "submitted (exchange)", "feedback"]
        body = []
        for r in sorted(rows, key=lambda r: r["student_id"]):
            label = self.kind(r["student_id"])[0]
            if self.browser and r["student_id"] == self.student_names[0]:
                label += " (Chromium)"
            fed = (self.home(r["student_id"]) / COURSE / ASSIGNMENT / "feedback").is_dir()
            body.append(
                [
                    r["student_id"],
                    label,
                    *(r[t] for t in a.tasks),
                    r["total"],
                    f"{gradebook.get(r['student_id'], float('nan')):g}",
                    r["submitted_at"][:19],
                    "fetched" if fed else "-",
                ]
            )
        maxrow = ["(max)", "", *(f"{a.points[t]:g}" for t in a.tasks), f"{a.total:g}", "", "", ""]
        return text_table(head, body, maxrow, left=(0, 1, -2, -1))

    def check_access(self) -> None:
        """What a student's account can read: not the course root (secret, gradebook, submissions),
        not another student's home, not the exchange's inbound (the others' submissions)."""
        student, other = self.student_names[-1], self.student_names[0]
        forbidden = {
            "the course secret": ["cat", str(self.course_root / ".cnnlab-secret")],
            "the gradebook": ["cat", str(self.course_root / "gradebook.db")],
            "another student's home": ["ls", str(self.home(other))],
            "the exchange's inbound": ["ls", str(self.work / "exchange" / COURSE / "inbound")],
        }
        if student == other:
            del forbidden["another student's home"]
        readable = []
        for what, args in forbidden.items():
            with contextlib.suppress(HubDemoError):
                self.run_as(student, args)
                readable.append(what)
        if readable:
            raise HubDemoError(f"{student} can read {', '.join(readable)}")
        self.say(f"{student} cannot read {', '.join(forbidden)}")

    def gradebook_scores(self) -> dict[str, float]:
        out = self.grader_run("export", "--out", str(self.course_root / "export"))
        del out
        with open(self.course_root / "export" / "grades.csv", newline="") as fh:
            return {
                r["student_id"]: float(r["raw_score"])
                for r in csv.DictReader(fh)
                if r["assignment"] == ASSIGNMENT
            }

    # -- the whole demo ----------------------------------------------------------------------------
    def run(self) -> int:
        t0 = time.monotonic()
        self.preflight()
        self.work.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work, 0o755)
        (self.work / MARKER).write_text("made by `make hub-demo`; --cleanup deletes it\n")
        try:
            self.venv_bin = public_python(self.work / "python", self.log)
            self.make_users()
            self.write_config()
            self.start_hub()
            self.make_tokens()
            self.prepare_work()
            self.release()
            browser_student = self.student_names[0] if self.browser else None
            scripted = [s for s in self.student_names if s != browser_student]
            if browser_student:
                from autograder.hub import browser

                session = browser.StudentBrowser(self, browser_student)
                session.__enter__()
            try:
                if browser_student:
                    session.fetch_and_submit()
                    self.say(f"{browser_student}: fetched and submitted in Chromium (Assignments tab)")
                self.scripted_students(scripted, self.student_work)
                self.say(f"{len(scripted)} students fetched, worked and submitted as their own users")
                self.collect_and_grade()
                self.say("collected from the exchange, graded, feedback generated and released")
                self.scripted_students(scripted, self.fetch_feedback)
                if browser_student:
                    seen = session.fetch_feedback()
                    self.say(f"{browser_student}: feedback fetched and opened in Chromium ({seen})")
                    csp = session.instructor_formgrader(self.instructor)
                    self.say(
                        f"{self.instructor}: the formgrader in its own tab lists {ASSIGNMENT} (CSP: {csp})"
                    )
            finally:
                if browser_student:
                    session.__exit__(None, None, None)
            self.check_access()
            rows = self.check()
            print(self.grade_table(rows))
            self.log(
                f"hub demo passed in {time.monotonic() - t0:.0f} s: {len(self.student_names)} students "
                "graded once, gradebook = batch grader, feedback in every home"
            )
            return 0
        finally:
            if self.keep:
                self.log(
                    f"--keep: the hub runs at {self.url} (password {PASSWORD!r}); work folder {self.work}"
                )
                self.log(f"clean up with: {sys.executable} -m autograder.hub --cleanup {self.work}")
            else:
                cleanup(self.work, self.hub, self.log)


# -- helpers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_command() -> list[str] | None:
    """configurable-http-proxy from the repository's node_modules (npm ci), else from PATH."""
    local = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.exists():
        return [str(local)]
    found = shutil.which("configurable-http-proxy")
    return [found] if found else None


def readable_by_others(path: Path) -> bool:
    """Whether every user can reach ``path``: each folder on the way searchable, the file readable."""
    path = Path(path).resolve()
    if not os.stat(path).st_mode & 0o004:
        return False
    return all(os.stat(p).st_mode & 0o001 for p in path.parents)


def public_python(where: Path, log=print) -> Path:
    """The ``bin`` folder of a Python every user can run, with this virtualenv's packages.

    This virtualenv's own when its interpreter is readable by all. Otherwise (an interpreter under a
    private home, e.g. pyenv in /root) a copy of this interpreter and its standard library in
    ``where`` whose ``site-packages`` is this virtualenv's, with this virtualenv's commands
    (``nbgrader``, ``jupyterhub-singleuser``, ...) pointed at it; :data:`LIBRARY_PATH` then names its
    ``lib`` (a shared ``libpython``). A real deployment installs one environment for all users
    (docs/hub.md)."""
    here = Path(sys.executable).parent
    if readable_by_others(Path(sys.executable)):
        return here
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix).resolve()
    (where / "bin").mkdir(parents=True)
    shutil.copy2(Path(sys.executable).resolve(), where / "bin" / version)
    (where / "bin" / "python").symlink_to(version)
    skip = shutil.ignore_patterns("site-packages", "test", "idlelib", "tkinter", "ensurepip", "turtledemo")
    shutil.copytree(base / "lib" / version, where / "lib" / version, symlinks=True, ignore=skip)
    for lib in (base / "lib").glob("libpython*.so*"):
        shutil.copy2(lib, where / "lib" / lib.name, follow_symlinks=True)
    (where / "lib" / version / "site-packages").symlink_to(sysconfig.get_path("purelib"))
    (where / "share").symlink_to(Path(sys.prefix) / "share")  # templates, Lab's extensions
    python = where / "bin" / "python"
    for script in here.iterdir():
        if script.is_file() and not script.name.startswith(("python", "activate", "pip")):
            with contextlib.suppress(UnicodeDecodeError, OSError):
                first, _, rest = script.read_text().partition("\n")
                if first.startswith("#!") and "python" in first:
                    target = where / "bin" / script.name
                    target.write_text(f"#!{python}\n{rest}")
    for path in [where, *where.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() or path.parent.name == "bin" else 0o444))
    LIBRARY_PATH.append(str(where / "lib"))
    log(f"python: a copy of {version} every user can run, with this virtualenv's packages, in {where}")
    return where / "bin"


def hub_version() -> str:
    import jupyterhub

    return jupyterhub.__version__


def _user_pids(uids: set[int]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid in uids:
                    pids.append(int(entry.name))
    return pids


def cleanup(work: Path, hub: subprocess.Popen | None = None, log=print) -> None:
    """Stop the hub (its process group), end the processes of the demo's users, delete the users and
    the work folder. Only what ``work`` records (``users.txt``, the marker) is touched."""
    work = Path(work)
    if hub is not None and hub.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(hub.pid, signal.SIGTERM)
        try:
            hub.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(hub.pid, signal.SIGKILL)
    elif hub is None and (work / "hub" / "jupyterhub.pid").exists():
        with contextlib.suppress(ValueError, ProcessLookupError, OSError):
            os.killpg(int((work / "hub" / "jupyterhub.pid").read_text()), signal.SIGTERM)
    users = (work / "users.txt").read_text().split() if (work / "users.txt").exists() else []
    uids = set()
    for user in users:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(user).pw_uid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _user_pids(uids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while _user_pids(uids) and time.monotonic() < deadline:
            time.sleep(0.2)
    for user in users:
        subprocess.run(["userdel", "--remove", user], capture_output=True, check=False)
    if (work / MARKER).exists():
        shutil.rmtree(work, ignore_errors=True)
    log(f"cleaned up: {len(users)} users, their processes and {work}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.hub",
        description="A class on a local JupyterHub with nbgrader's exchange, end to end (run as root).",
    )
    parser.add_argument("--students", type=int, default=30, help="number of students (default 30)")
    parser.add_argument("--prefix", default="cnn", help="user names <prefix>-grader, -instructor, -s01...")
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary folder)")
    parser.add_argument(
        "--keep", action="store_true", help="leave the users, the hub and the files for a look"
    )
    parser.add_argument("--no-browser", action="store_true", help="every student scripted (no Chromium)")
    parser.add_argument("--jobs", type=int, default=4, help="students working at the same time (default 4)")
    parser.add_argument("--cleanup", type=Path, metavar="WORK", help="remove what a --keep run left")
    args = parser.parse_args(argv)
    if args.cleanup:
        if not (args.cleanup / MARKER).exists():
            print(f"error: {args.cleanup} is no hub-demo work folder", file=sys.stderr)
            return 2
        cleanup(args.cleanup)
        return 0
    if not 1 <= args.students <= 99 or not args.prefix.isalnum() or len(args.prefix) > 12:
        print("error: --students must be 1..99 and --prefix at most 12 letters or digits", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="cnnlab-hub-"))
    if args.work and args.work.exists() and any(args.work.iterdir()):
        print(f"error: --work {args.work} is not empty", file=sys.stderr)
        return 2
    demo = Demo(work, args.prefix, args.students, not args.no_browser, args.keep, args.jobs)
    try:
        return demo.run()
    except HubDemoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
