"""The services' IAM policies allow every DynamoDB and SQS operation the adapters make.

A missing action passes every test on moto (which checks no IAM) and fails in AWS at the first call:
the billing run's Scan of the accounts table once had no permission.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ADAPTERS = REPO / "services" / "billing_core" / "adapters"
IAM = (REPO / "terraform" / "environments" / "example" / "iam.tf").read_text()


def client_calls(*modules: str) -> set[str]:
    """The boto3 client methods the adapters call: ``self._client.<method>(...)`` or ``self._call("<method>", ...)``."""
    calls = set()
    for module in modules:
        for node in ast.walk(ast.parse((ADAPTERS / module).read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "_client":
                calls.add(node.func.attr)
            elif (node.func.attr == "_call" and node.args and isinstance(node.args[0], ast.Constant)
                  and isinstance(node.args[0].value, str)):
                calls.add(node.args[0].value)
    return calls


def action(service: str, method: str) -> str:
    return f"{service}:" + "".join(part.title() for part in method.split("_"))


def test_every_dynamodb_operation_of_the_adapters_is_allowed():
    calls = client_calls("dynamodb.py", "dynamodb_events.py")

    assert {"get_item", "query", "scan", "transact_write_items"} <= calls  # the walk finds the real calls
    missing = {action("dynamodb", call) for call in calls} - set(re.findall(r'"(dynamodb:[A-Za-z]+)"', IAM))
    assert not missing, f"iam.tf allows none of {sorted(missing)}"


def test_the_worker_and_the_api_may_scan_the_tables_they_list():
    for policy in ("billing_api", "scheduler_worker"):
        body = IAM.split(f'data "aws_iam_policy_document" "{policy}"', 1)[1].split('data "aws_iam_policy_document"')[0]
        assert "local.scan_actions" in body, policy


def test_every_sqs_operation_of_the_adapters_is_allowed():
    calls = client_calls("sqs.py")

    assert "send_message_batch" in calls
    missing = {action("sqs", call) for call in calls} - set(re.findall(r'"(sqs:[A-Za-z]+)"', IAM))
    # SendMessageBatch is authorized by sqs:SendMessage (AWS: batch actions use the single action's permission).
    missing = {m.replace("SendMessageBatch", "SendMessage").replace("DeleteMessageBatch", "DeleteMessage")
               for m in missing} - set(re.findall(r'"(sqs:[A-Za-z]+)"', IAM))
    assert not missing, f"iam.tf allows none of {sorted(missing)}"
