"""``billing --stack``: the command reads the worker's environment the local stack wrote, or refuses clearly."""

from __future__ import annotations

import json

import pytest

from billing_cli.stack_file import stack_environment
from billing_core.errors import SettingsError


def test_the_worker_environment_of_stack_json_is_what_the_command_runs_with(tmp_path):
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"region": "eu-central-1", "worker_environment": {"BILLING_TABLE": "billing-local"}}))

    assert stack_environment(path) == {"BILLING_TABLE": "billing-local"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "not a local stack's stack.json"),
        ("{not json", "not a local stack's stack.json"),
        (json.dumps({"region": "eu-central-1"}), "not a local stack's stack.json"),
        (json.dumps({"worker_environment": ["BILLING_TABLE"]}), "not a mapping of variables to strings"),
        (json.dumps({"worker_environment": {"WORKER_THREADS": 4}}), "not a mapping of variables to strings"),
    ],
)
def test_a_file_that_is_no_stack_json_is_refused_with_the_path(tmp_path, content, problem):
    path = tmp_path / "stack.json"
    if content is not None:
        path.write_text(content)

    with pytest.raises(SettingsError, match=problem) as refused:
        stack_environment(path)
    assert str(path) in str(refused.value)
