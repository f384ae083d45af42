"""Child processes of the local stack: started in their own process group, stopped as a group."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from local_stack.errors import PortInUse, ProcessFailed

HOST = "127.0.0.1"

# Run before the real program: ask the kernel to SIGTERM the child when the stack's process dies,
# even by SIGKILL (a killed test run must not leave servers behind on a shared machine). The
# parent pid check closes the race where the stack died before prctl ran. Linux only; elsewhere
# this just execs the program.
_DIE_WITH_PARENT = (
    "import os, signal, sys\n"
    "parent = int(sys.argv[1])\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "    if os.getppid() != parent:\n"
    "        sys.exit(1)\n"
    "os.execvpe(sys.argv[2], sys.argv[2:], os.environ)\n"
)


class ChildProcess:
    """One program the stack runs, in its own process group, with output appended to a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the program; its stdout and stderr go to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                [sys.executable, "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *self.argv],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session, so a Ctrl-C in the terminal reaches only the stack, which then
                # stops the children in order, and so the whole group can be signalled at once.
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        """The pid of the program (also its process group id), once started."""
        return self._popen.pid if self._popen else None

    def exit_code(self) -> int | None:
        """The exit code if the program has ended, else ``None``."""
        return self._popen.poll() if self._popen else None

    def is_running(self) -> bool:
        """Whether the program was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def wait_until_ready(self, is_ready: Callable[[], bool], timeout: float) -> None:
        """Poll ``is_ready`` until it is true; ``ProcessFailed`` if the program exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.exit_code()
            if code is not None:
                raise ProcessFailed(self.name, f"exited with code {code} before it was ready", self.log_path)
            if is_ready():
                return
            if time.monotonic() > deadline:
                raise ProcessFailed(self.name, f"was not ready after {timeout:.0f} s", self.log_path)
            time.sleep(0.05)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole group, wait up to ``grace`` seconds for it to go, then SIGKILL what is left."""
        self.request_stop()
        self.wait_stopped(grace)

    def request_stop(self) -> None:
        """SIGTERM every process in the group (gunicorn's master passes it on to its workers too)."""
        if self._popen is not None:
            _signal_group(self._popen.pid, signal.SIGTERM)

    def wait_stopped(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the group to exit after ``request_stop``; SIGKILL the rest."""
        if self._popen is None:
            return
        group = self._popen.pid
        deadline = time.monotonic() + grace
        try:
            self._popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        while process_group_members(group) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_group_members(group):
            _signal_group(group, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5
            while process_group_members(group) and time.monotonic() < kill_deadline:
                time.sleep(0.05)
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()


def stop_together(processes: Sequence[ChildProcess], grace: float = 10.0) -> None:
    """Stop several children at once: all get SIGTERM first, then each gets its grace period."""
    for process in processes:
        process.request_stop()
    deadline = time.monotonic() + grace
    for process in processes:
        process.wait_stopped(max(0.0, deadline - time.monotonic()))


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


def process_group_members(group: int) -> list[int]:
    """Pids whose process group is ``group`` and that have not exited (zombies count as exited)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited while we looked
        # The command name may contain spaces and parentheses; the fields after the last ')' do not.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state not in ("Z", "X"):
            members.append(int(entry))
    return members


def pid_is_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] not in ("Z", "X")


def ensure_ports_free(ports: Mapping[str, int]) -> None:
    """Raise ``PortInUse`` naming every port in ``ports`` (name -> port) that cannot be bound."""
    taken = {name: port for name, port in ports.items() if not port_is_free(port)}
    if taken:
        raise PortInUse(taken)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``127.0.0.1:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option the servers set, so a port in TIME_WAIT after a clean stop counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel considers free right now (for tests and parallel stacks)."""
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probes.append(probe)
            probe.bind((HOST, 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()
