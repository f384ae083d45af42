"""What can go wrong when the local stack starts."""

from __future__ import annotations


class StackError(Exception):
    """The local stack could not be started."""


class PortInUse(StackError):
    """A port the stack needs is taken by another process; nothing was started."""

    def __init__(self, taken: dict[str, int]) -> None:
        self.taken = dict(taken)
        listed = ", ".join(f"{port} ({name})" for name, port in taken.items())
        super().__init__(
            f"port already in use on 127.0.0.1: {listed}. Stop whatever listens there "
            "(is another `make dev` running?) or choose other ports, e.g. "
            "`python -m local_stack --api-port 9000`."
        )


class ProcessFailed(StackError):
    """A child process exited or never became ready; its log file says why."""

    def __init__(self, name: str, reason: str, log_path: object) -> None:
        self.name = name
        self.log_path = log_path
        super().__init__(f"{name} {reason}; see its log: {log_path}")
