"""The grading sandbox policy: which user, which limits and which bubblewrap view a student's kernel gets.

Student code runs as an unprivileged account (``academy-grader`` locally, the student's own uid under
Slurm) inside a bubblewrap (``bwrap``) mount namespace that contains only the system runtime (``/usr``,
the Python environment, a few files of ``/etc``), a private copy of that one submission at
``/submission`` and a socket directory.  The repository checkout, the state directory (gradebook,
submissions, autograded copies), the source/solution notebooks and every home directory simply do not
exist in that view, so nothing depends on file permissions (the checkout is world-readable).  The
network, IPC, PID and UTS namespaces are private; the kernel talks to the grader over ZeroMQ ``ipc``
sockets in a directory bound at the same path on both sides.

Limits belong to the submission: where cgroups are writable (root, local backend) each kernel gets its
own cgroup for processes, memory (tmpfs files included) and CPU (:mod:`academy.course.grading.limits`); the
kernel rlimits set with ``prlimit`` before the privilege drop add per-process bounds: address space,
file size, open files, CPU seconds and no core dumps (and, without cgroups, processes).  Everything a
student can write is a size-limited tmpfs (``/tmp``, ``/dev/shm`` and ``/submission``, which starts as
a copy of the read-only submission), so no submission fills a disk.  Before bubblewrap starts,
:mod:`academy.course.grading.confine` joins the cgroup, a fresh session keyring, closes inherited descriptors
and clears the environment.  Wall-clock limits per cell and per notebook are enforced from outside by
:mod:`academy.course.grading.kernel`.
"""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass

from traitlets import Bool, Float, Integer, List, TraitError, Unicode, validate
from traitlets.config import Configurable

#: Where the submission's private working copy appears inside the sandbox.
SANDBOX_WORKDIR = "/submission"
_SUBMISSION_SRC = "/.submission-files"
_CONFINE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "confine.py")

# Environment the kernel sees: nothing of the grader's environment leaks in (hub tokens, paths).
_FIXED_ENV = {
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
    # One thread per kernel: parallel grading already uses every core, and BLAS thread pools
    # reserve address space that would count against the memory limit.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class SandboxUser:
    """The account a kernel runs as."""

    name: str
    uid: int
    gid: int


class SandboxError(RuntimeError):
    """The sandbox cannot be set up as configured (missing tool, missing account, not root)."""


class SandboxPolicy(Configurable):
    """Limits and filesystem view for one student kernel."""

    user = Unicode(
        "academy-grader",
        help="Unprivileged account that runs student kernels locally (created by `academy course setup`).",
    ).tag(config=True)
    memory_limit = Integer(
        2 * 1024**3, help="Address-space limit (RLIMIT_AS) of the kernel, in bytes; a memory bomb gets MemoryError."
    ).tag(config=True)
    max_processes = Integer(
        256, help="Processes and threads one submission may run (its cgroup's pids.max; RLIMIT_NPROC of the "
                  "sandbox account when cgroups are not writable); stops fork bombs."
    ).tag(config=True)
    account_processes = Integer(
        16384, help="RLIMIT_NPROC of the sandbox account when per-submission cgroups are in use: a backstop only, "
                    "far above max_processes times the number of parallel jobs."
    ).tag(config=True)
    scratch_size = Integer(
        256 * 1024**2, help="Size in bytes of each writable tmpfs in the sandbox (/tmp, /dev/shm, /submission); "
                            "the memory limit counts their contents too."
    ).tag(config=True)
    use_cgroups = Bool(
        True, help="Give each submission its own cgroup (processes, memory, CPU) when cgroups are writable."
    ).tag(config=True)
    cpus = Float(1.0, help="CPU cores one submission's cgroup may use.").tag(config=True)
    max_file_size = Integer(
        64 * 1024**2, help="Largest file the kernel may write (RLIMIT_FSIZE), in bytes."
    ).tag(config=True)
    max_open_files = Integer(512, help="RLIMIT_NOFILE of the kernel.").tag(config=True)
    cpu_time_limit = Integer(
        600, help="CPU seconds one kernel may use in total (RLIMIT_CPU); the kernel is killed beyond it."
    ).tag(config=True)
    share_network = Bool(
        False, help="Let student code reach the network (off: private network namespace with loopback only)."
    ).tag(config=True)
    max_workdir_files = Integer(
        2000, help="Files and folders of the notebook's folder (submission plus the restored course files) copied "
                   "into the sandbox; more is refused with a clear message. Their bytes are bounded by scratch_size."
    ).tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap executable.").tag(config=True)
    etc_files = List(
        Unicode(),
        default_value=[
            "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ld.so.cache", "/etc/ld.so.conf",
            "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives", "/etc/ssl", "/etc/mime.types",
            "/etc/fonts", "/etc/matplotlibrc",
        ],
        help="Files under /etc made visible read-only (missing ones are skipped); never secrets.",
    ).tag(config=True)
    extra_ro_binds = List(
        Unicode(), help="Further host paths to show read-only at the same path (e.g. a shared dataset)."
    ).tag(config=True)

    @validate("memory_limit", "max_processes", "max_file_size", "max_open_files", "cpu_time_limit",
              "account_processes", "scratch_size", "cpus", "max_workdir_files")
    def _positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError(f"SandboxPolicy.{proposal['trait'].name} must be positive, got {proposal['value']}")
        return proposal["value"]

    @validate("extra_ro_binds")
    def _absolute(self, proposal):
        for path in proposal["value"]:
            if not os.path.isabs(path):
                raise TraitError(f"SandboxPolicy.extra_ro_binds entries must be absolute paths, got {path!r}")
        return proposal["value"]

    def resolve_user(self, name: str | None = None) -> SandboxUser:
        """Look the account up; running it as another user needs root, so say so early."""
        name = name or self.user
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SandboxError(
                f"sandbox account {name!r} does not exist; run `academy course setup` as root to create it"
            ) from None
        if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
            raise SandboxError(f"running kernels as {name!r} needs root (or set the sandbox user to yourself)")
        if entry.pw_uid == 0:
            raise SandboxError("refusing to run student code as root")
        return SandboxUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)

    def check_tools(self) -> None:
        for tool in (self.bwrap, "prlimit", "setpriv"):
            if shutil.which(tool) is None:
                raise SandboxError(f"{tool!r} not found; install Debian packages bubblewrap and util-linux")

    def limits_prefix(self, cgroup_procs: list[str] | None = None) -> list[str]:
        confine = [sys.executable, "-I", "-S", _CONFINE]
        for procs in cgroup_procs or []:
            confine += ["--cgroup", procs]
        nproc = self.account_processes if cgroup_procs else self.max_processes
        return confine + [
            "--",
            "prlimit",
            f"--as={self.memory_limit}",
            f"--nproc={nproc}",
            f"--fsize={self.max_file_size}",
            f"--nofile={self.max_open_files}",
            f"--cpu={self.cpu_time_limit}",
            "--core=0",
            "--",
        ]

    def _runtime_binds(self) -> list[str]:
        args: list[str] = ["--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        prefixes = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
        for prefix in sorted(prefixes):
            if prefix != "/usr" and not prefix.startswith("/usr/"):
                args += ["--ro-bind", prefix, prefix]
        for path in list(self.etc_files) + list(self.extra_ro_binds):
            if os.path.exists(path):
                args += ["--ro-bind", path, path]
        return args

    def command(self, inner: list[str], *, user: SandboxUser, workdir: str, ipc_dir: str,
                env: dict[str, str] | None = None, cgroup_procs: list[str] | None = None) -> list[str]:
        """The full argv: confinement, rlimits, privilege drop, bubblewrap, then ``inner`` in the sandbox."""
        environment = dict(_FIXED_ENV)
        environment["PATH"] = f"{os.path.dirname(sys.executable)}:/usr/local/bin:/usr/bin:/bin"
        environment["USER"] = environment["LOGNAME"] = user.name
        environment.update(env or {})
        drop: list[str] = []
        if os.geteuid() != user.uid:
            drop = ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
                    "--inh-caps=-all", "--"]
        bw = [self.bwrap, "--unshare-all", "--unshare-user"]
        if self.share_network:
            bw.append("--share-net")
        bw += ["--die-with-parent", "--new-session", "--disable-userns", "--hostname", "grader", "--clearenv"]
        for key, value in sorted(environment.items()):
            bw += ["--setenv", key, value]
        # The private /tmp comes first: bwrap applies mounts in order, and a checkout (with its
        # venv) may itself live under /tmp, as CI's does; a later tmpfs would hide it.
        size = str(self.scratch_size)
        bw += ["--size", size, "--tmpfs", "/tmp"]
        bw += self._runtime_binds()
        bw += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm",
               "--bind", ipc_dir, ipc_dir,
               "--ro-bind", workdir, _SUBMISSION_SRC,
               "--size", size, "--tmpfs", SANDBOX_WORKDIR,
               "--chdir", SANDBOX_WORKDIR, "--"]
        # The writable working copy lives in the size-limited tmpfs; the host copy stays read-only.
        copy = ["/bin/sh", "-c", f'cp -R {_SUBMISSION_SRC}/. {SANDBOX_WORKDIR}/ 2>/dev/null; exec "$@"', "sh"]
        return self.limits_prefix(cgroup_procs) + drop + bw + copy + list(inner)


#: Folders nested deeper than this in the notebook's folder are refused (the walk must not recurse without end).
MAX_WORKDIR_DEPTH = 32


def copy_workdir(src: str, dst: str, user: SandboxUser, max_entries: int, max_bytes: int) -> None:
    """Copy the notebook's folder, sub-folders included, into the sandbox's working copy, owned by ``user``.

    Everything nbgrader gives the notebook (the submission with the course's files restored) keeps its
    relative path.  Links are never followed or copied (a link to another student's file stays behind) and
    neither are devices or pipes; a tree larger than the limits is refused with an error that says which,
    since a half-copied folder would quietly cost the student points.
    """
    entries = total = 0
    src_fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        stack = [(src_fd, dst, 0)]
        while stack:
            dir_fd, target, depth = stack.pop()
            try:
                for name in sorted(os.listdir(dir_fd)):
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                        continue
                    entries += 1
                    total += st.st_size if stat.S_ISREG(st.st_mode) else 0
                    if entries > max_entries or total > max_bytes:
                        raise SandboxError(
                            f"the notebook's folder is too large for the grading sandbox ({entries} files and "
                            f"folders, {total // 1024**2} MiB at least; limits SandboxPolicy.max_workdir_files="
                            f"{max_entries} and SandboxPolicy.scratch_size={max_bytes // 1024**2} MiB)")
                    path = os.path.join(target, name)
                    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                    if stat.S_ISDIR(st.st_mode):
                        if depth + 1 > MAX_WORKDIR_DEPTH:
                            raise SandboxError(f"the notebook's folder is nested deeper than {MAX_WORKDIR_DEPTH} "
                                               "folders; the grading sandbox refuses it")
                        os.mkdir(path, 0o700)
                        os.chown(path, user.uid, user.gid)
                        stack.append((os.open(name, flags | os.O_DIRECTORY, dir_fd=dir_fd), path, depth + 1))
                        continue
                    fd = os.open(name, flags, dir_fd=dir_fd)
                    with os.fdopen(fd, "rb") as fin:
                        if not stat.S_ISREG(os.fstat(fin.fileno()).st_mode):
                            continue  # swapped for something else since the stat: skip it too
                        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                        with os.fdopen(out, "wb") as fout:
                            shutil.copyfileobj(fin, fout)
                    os.chown(path, user.uid, user.gid)
            finally:
                os.close(dir_fd)
    except BaseException:
        for dir_fd, _, _ in stack:
            os.close(dir_fd)
        raise


def ensure_account(name: str) -> SandboxUser:
    """Create the unprivileged grader account if it is missing (root only); no home, no login shell."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if os.geteuid() != 0:
            raise SandboxError(f"creating account {name!r} needs root") from None
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", "--user-group", name],
            capture_output=True, text=True,
        )
        try:
            # Two graders starting at once both try; the loser finds the winner's account.
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SandboxError(f"could not create account {name!r}: {made.stderr.strip()}") from None
    return SandboxUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
