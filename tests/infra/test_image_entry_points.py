"""Every entry point of every image imports with what that image holds: its lock file and its source folders.

The images install ``deploy/requirements.lock`` with ``--no-deps`` and copy ``services/`` (and, for
``local-dev`` only, ``devtools/``); the tests themselves run where moto and the dev tools are installed,
so a module that reaches for one of those would pass every other test and fail in the image. Here each
entry point is imported in ``.venv-image`` (``make image-env``: a venv from the lock file alone, as the
Dockerfile builds it) with the image's own ``PYTHONPATH``. The entry points are read from the Dockerfile's
``CMD`` lines and the compose file's ``command`` lines, so a new one cannot be left out.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.infra.conftest import REPO

IMAGE_VENV = REPO / ".venv-image"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
SERVICE_PATH = str(REPO / "services")
LOCAL_DEV_PATH = f"{REPO / 'services'}:{REPO / 'devtools'}"
# Imported in every service image as well: the operator's command runs in the worker's task.
ALWAYS = ("billing_cli.cli",)


def _modules(command: str) -> set[str]:
    """The modules a command line starts: ``python -m X`` and ``gunicorn ... 'X:create_app()'``."""
    return set(re.findall(r"-m\W+([a-z_][\w.]*)", command)) | set(re.findall(r"([a-z_][\w.]*):create_app\(\)", command))


def _stage_commands() -> dict[str, str]:
    stages = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.MULTILINE)[1:]
    found = {}
    for stage in stages:
        name = re.match(r"\S+ AS (\S+)", stage).group(1)
        commands = re.findall(r"^CMD (.+)$", stage, flags=re.MULTILINE)
        if commands:
            found[name] = commands[-1]
    return found


def _compose_commands() -> dict[str, str]:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    return {
        service["build"]["target"]: " ".join(service["command"])
        if isinstance(service["command"], list)
        else service["command"]
        for service in services.values()
        if "build" in service and "command" in service
    }


def entry_points() -> list[tuple[str, str]]:
    """(image target, module) for every module an image's CMD or a compose command starts."""
    per_target: dict[str, set[str]] = {}
    for commands in (_stage_commands(), _compose_commands()):
        for target, command in commands.items():
            per_target.setdefault(target, set()).update(_modules(command))
    for target in ("billing-api", "webhook-receiver", "scheduler-worker"):
        per_target[target].update(ALWAYS)
    return sorted((target, module) for target, modules in per_target.items() for module in modules)


# Imports the module; for a package run as ``python -m``, compiles its ``__main__`` without running it;
# prints the test-only packages that came along (none may).
_IMPORT_CHECK = """
import importlib, importlib.util, sys
sys.path[:0] = {path!r}
importlib.import_module({module!r})
if importlib.util.find_spec({module!r}).submodule_search_locations:
    main = importlib.util.find_spec({module!r} + ".__main__")
    if main is not None:
        compile(open(main.origin).read(), main.origin, "exec")
print(sorted(m for m in sys.modules if m.split(".")[0] in ("moto", "pytest", "hypothesis")))
"""


def test_the_entry_points_are_found_in_the_image_definitions():
    found = entry_points()
    assert ("local-dev", "local_stack.compose_provision") in found
    assert ("local-dev", "stripe_emulator") in found
    assert {("billing-api", "billing_api"), ("webhook-receiver", "webhook_receiver")} <= set(found)
    assert ("scheduler-worker", "scheduler_worker") in found


@pytest.mark.parametrize(("target", "module"), entry_points(), ids=lambda value: str(value))
def test_each_entry_point_imports_from_its_images_lock_file_alone(target, module):
    python = IMAGE_VENV / "bin" / "python"
    assert python.exists(), "no .venv-image: `make image-env` builds it from deploy/requirements.lock"
    path = LOCAL_DEV_PATH if target == "local-dev" else SERVICE_PATH
    code = _IMPORT_CHECK.format(path=path.split(":"), module=module)
    result = subprocess.run(
        [str(python), "-I", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert result.returncode == 0, f"{target}: `import {module}` fails in the image:\n{result.stderr[-2000:]}"
    assert result.stdout.strip() == "[]", f"{target}: {module} pulls in test-only packages: {result.stdout}"


def test_the_service_images_hold_no_devtools():
    stages = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.MULTILINE)[1:]
    by_name = {re.match(r"\S+ AS (\S+)", stage).group(1): stage for stage in stages}
    for name in ("dependencies", "runtime", "billing-api", "webhook-receiver", "scheduler-worker"):
        assert "devtools" not in re.sub(r"#.*", "", by_name[name]), name


def _aws_clients_in_code() -> set[str]:
    """Every AWS API a boto3 client is made for in the images' code (services/ and the compose provisioning)."""
    sources = [*(REPO / "services").rglob("*.py"), *(REPO / "devtools" / "local_stack").rglob("*.py")]
    pattern = re.compile(r"""(?:\bmake|\bclients|\.client|aws_client)\(\s*["']([a-z0-9-]+)["']""")
    return {name for source in sources for name in pattern.findall(source.read_text())}


def test_the_images_keep_the_botocore_model_of_every_aws_api_the_code_calls():
    kept = set(re.findall(r"! -name ([a-z0-9-]+)", DOCKERFILE.read_text()))
    called = _aws_clients_in_code()
    assert {"dynamodb", "sqs", "s3", "sesv2", "sns"} <= called  # the pattern finds them
    assert called - kept == set(), "add these to the Dockerfile's botocore models"
