"""The container engine of these machines, made ready for the compose project: Podman from Debian, rootful.

What is the machine's and not the project's lives here, never in ``docker-compose.yml`` or the Dockerfile
(both stay right for Docker users); ``../shared/containers/README.md`` says why each step is needed:

- a ``containers.conf`` with ``runc`` (crun refuses this cgroup layout), ulimits the machine allows, and
  the netavark network backend (its DNS lets the services find ``moto`` and ``stripe-emulator`` by name);
- stand-ins for the two images no registry serves here: ``python:3.11.14-slim-bookworm`` (a Debian
  bookworm rootfs from ``mmdebstrap`` with Python 3.11 and the machine's CA certificates, as pip in a build
  must trust the machine's TLS) and ``motoserver/moto:5.2.5`` (moto's server from PyPI on it); each is made
  once and kept in the engine's storage, so a second run reuses them;
- ``--format docker`` for every build (with the OCI format podman drops HEALTHCHECK), on the host's network
  (a container network reaches the project's own containers here, not the machine's resolver or PyPI);
- ``up`` in two steps (podman-compose 1.6 on podman 4.3 cannot wait for ``service_healthy``), and health
  checks run by hand (``podman healthcheck run``: without systemd podman runs none by itself).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BASE_IMAGE = "docker.io/library/python:3.11.14-slim-bookworm"
MOTO_IMAGE = "docker.io/motoserver/moto:5.2.5"
MOTO_VERSION = "5.2.5"
PROJECT = "aws-cost-billing"
# netavark runs iptables to set up the containers' network; Debian's netavark does not depend on it.
DEBIAN_PACKAGES = ("podman", "runc", "mmdebstrap", "netavark", "aardvark-dns", "uidmap", "iptables")
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
[network]
network_backend = "netavark"
"""
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")


class EngineUnavailable(AssertionError):
    """The engine cannot run here; the message says what failed (the test fails with it, never skips)."""


@dataclass
class Engine:
    """Podman with this machine's configuration, and podman-compose for the project in ``repo``."""

    repo: Path
    work: Path
    compose_command: Sequence[str]
    timings: dict[str, float]

    @property
    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.work / "containers.conf"),
            "BUILDAH_FORMAT": "docker",
            "GIT_REVISION": self.revision,
        }

    @property
    def revision(self) -> str:
        """The commit the images are built from (their org.opencontainers.image.revision label)."""
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=self.repo, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() if done.returncode == 0 else "unknown"

    def run(self, *argv: str, timeout: float = 600, check: bool = True, cwd: Path | None = None) -> str:
        """Run a command with the engine's environment; its output (``EngineUnavailable`` if it fails)."""
        try:
            done = subprocess.run(
                list(argv),
                cwd=cwd or self.repo,
                env=self.environment,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise EngineUnavailable(f"{shlex.join(argv)} did not finish within {timeout:.0f} s") from None
        if check and done.returncode != 0:
            raise EngineUnavailable(
                f"{shlex.join(argv)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}"
            )
        return done.stdout

    def podman(self, *argv: str, timeout: float = 600, check: bool = True) -> str:
        return self.run("podman", *argv, timeout=timeout, check=check)

    def compose(self, *argv: str, timeout: float = 900) -> str:
        return self.run(*self.compose_command, *argv, timeout=timeout)

    def container(self, service: str) -> str:
        """The container name podman-compose gives the service's (only) container."""
        return f"{PROJECT}_{service}_1"

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)


def install_debian_packages() -> None:
    """Podman and what the stand-in images need, from Debian, where missing (the test runs as root)."""
    missing = [p for p in DEBIAN_PACKAGES if shutil.which(p if p != "uidmap" else "newuidmap") is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise EngineUnavailable(f"{', '.join(missing)} missing and not root: install them from Debian")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *DEBIAN_PACKAGES]):
        done = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise EngineUnavailable(f"{shlex.join(argv)} failed:\n{(done.stdout + done.stderr)[-3000:]}")


def prepare(repo: Path, work: Path, compose_command: Sequence[str]) -> Engine:
    """The engine ready to build the project: packages, configuration, the two stand-in images."""
    work.mkdir(parents=True, exist_ok=True)
    engine = Engine(repo, work, compose_command, {})
    started = time.monotonic()
    install_debian_packages()
    engine.timed("packages", started)
    (work / "containers.conf").write_text(CONTAINERS_CONF)
    engine.run("podman", "info", "--format", "{{.Host.NetworkBackend}}", timeout=120)
    started = time.monotonic()
    if not _exists(engine, BASE_IMAGE) and not _pulled(engine, BASE_IMAGE):
        _build_base(engine)
    engine.timed("base image", started)
    started = time.monotonic()
    if not _exists(engine, MOTO_IMAGE) and not _pulled(engine, MOTO_IMAGE):
        _build_moto(engine)
    engine.timed("moto image", started)
    return engine


def _exists(engine: Engine, image: str) -> bool:
    done = subprocess.run(["podman", "image", "exists", image], env=engine.environment, timeout=60)
    return done.returncode == 0


def _pulled(engine: Engine, image: str) -> bool:
    """Whether the registry gave us the image (no registry answers on these machines: a quick no)."""
    done = subprocess.run(
        ["podman", "pull", "--quiet", image], env=engine.environment, capture_output=True, text=True, timeout=120
    )
    return done.returncode == 0


def _build_base(engine: Engine) -> None:
    """Debian bookworm with Python 3.11, pip and venv, trusting the machine's CA, tagged as the FROM line's image."""
    rootfs = engine.work / "bookworm-python.tar"
    if not rootfs.exists():
        packages = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates,passwd"
        partial = rootfs.with_suffix(".partial.tar")
        engine.run("mmdebstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(partial), timeout=900)
        partial.replace(rootfs)
    engine.podman("import", str(rootfs), "localhost/bookworm-python-rootfs:latest", timeout=600)
    context = engine.work / "base"
    certificates = context / "certificates"
    shutil.rmtree(context, ignore_errors=True)
    certificates.mkdir(parents=True)
    for certificate in HOST_CA_DIR.glob("*.crt") if HOST_CA_DIR.is_dir() else ():
        shutil.copy(certificate, certificates / certificate.name)
    (context / "Containerfile").write_text(
        "FROM localhost/bookworm-python-rootfs:latest\n"
        "COPY certificates/ /usr/local/share/ca-certificates/\n"
        "RUN update-ca-certificates \\\n"
        "    && printf '[global]\\ncert = /etc/ssl/certs/ca-certificates.crt\\n' > /etc/pip.conf\n"
        "ENV LANG=C.UTF-8\n"
        'CMD ["python3"]\n'
    )
    engine.podman("build", "--format", "docker", "--network", "host", "-t", BASE_IMAGE, str(context), timeout=600)


def _build_moto(engine: Engine) -> None:
    """moto's server from PyPI on the base, started as the official image starts it."""
    context = engine.work / "moto"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Containerfile").write_text(
        f"FROM {BASE_IMAGE}\n"
        f"RUN python -m venv /opt/moto && /opt/moto/bin/pip install --no-cache-dir 'moto[server]=={MOTO_VERSION}'\n"
        "ENV PATH=/opt/moto/bin:$PATH\n"
        "EXPOSE 5000\n"
        'ENTRYPOINT ["moto_server", "-H", "0.0.0.0"]\n'
    )
    engine.podman("build", "--format", "docker", "--network", "host", "-t", MOTO_IMAGE, str(context), timeout=900)


def wait_healthy(engine: Engine, services: Sequence[str], timeout: float) -> None:
    """Run each service's health check until it passes (``EngineUnavailable`` naming those that never did)."""
    pending = set(services)
    deadline = time.monotonic() + timeout
    while pending:
        for service in sorted(pending):
            done = subprocess.run(
                ["podman", "healthcheck", "run", engine.container(service)],
                env=engine.environment,
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode == 0:
                pending.discard(service)
        if pending and time.monotonic() > deadline:
            logs = {s: engine.podman("logs", "--tail", "20", engine.container(s), check=False) for s in pending}
            raise EngineUnavailable(
                f"not healthy within {timeout:.0f} s: {sorted(pending)}\n{json.dumps(logs)[-3000:]}"
            )
        if pending:
            time.sleep(2)


def env_file(text: str) -> Mapping[str, str]:
    """The assignments of the provisioning's ``stack.env`` (shell-quoted ``NAME=value`` lines)."""
    values = {}
    for line in text.splitlines():
        if "=" in line:
            name, _, value = line.partition("=")
            values[name] = shlex.split(value)[0] if value else ""
    return values
