"""The services' IAM policies allow every DynamoDB, SQS, S3, SES and Athena operation the adapters make.

A missing action passes every test on moto (which checks no IAM) and fails in AWS at the first call:
the billing run's Scan of the accounts table once had no permission.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ADAPTERS = REPO / "services" / "billing_core" / "adapters"
EINVOICES_USE_CASE = REPO / "services" / "billing_core" / "use_cases" / "einvoices.py"
IAM = (REPO / "terraform" / "environments" / "example" / "iam.tf").read_text()
# The attributes the adapters keep their boto3 client in.
CLIENT_ATTRIBUTES = {"_client", "_s3", "_athena"}
# A source document: ``data.aws_iam_policy_document.<name>.json``, or ``...<name>[*].json`` of one
# created only for some configurations (count).
SOURCE_DOCUMENT = re.compile(r"data\.aws_iam_policy_document\.([a-z0-9_]+)(?:\[\*\])?\.json")

# Which methods of the DocumentStore (S3DocumentStore) each task role's process calls: the worker's
# invoice job writes the files once, and its invoices command reads them; billing-api serves them.
DOCUMENT_STORE_USE = {"scheduler_worker": {"put_once", "get"}, "billing_api": {"get"}}
# The IAM action S3 authorizes each call by: there is no s3:HeadObject, HEAD needs s3:GetObject.
S3_ACTIONS = {"head_object": "s3:GetObject", "put_object": "s3:PutObject", "get_object": "s3:GetObject"}


def client_calls(*modules: str) -> set[str]:
    """The boto3 client methods the adapters call: ``self._client.<method>(...)`` or ``self._call("<method>", ...)``."""
    calls = set()
    for module in modules:
        for node in ast.walk(ast.parse((ADAPTERS / module).read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if isinstance(node.func.value, ast.Attribute) and node.func.value.attr in CLIENT_ATTRIBUTES:
                calls.add(node.func.attr)
            elif (
                node.func.attr == "_call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                calls.add(node.args[0].value)
    return calls


def client_calls_per_method(module: str) -> dict[str, set[str]]:
    """For each public method of the classes in ``module``, the boto3 client methods it calls."""
    per_method: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse((ADAPTERS / module).read_text())):
        if isinstance(node, ast.ClassDef):
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and not method.name.startswith("_"):
                    per_method[method.name] = {
                        call.func.attr
                        for call in ast.walk(method)
                        if isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and isinstance(call.func.value, ast.Attribute)
                        and call.func.value.attr in CLIENT_ATTRIBUTES
                    }
    return per_method


def action(service: str, method: str) -> str:
    return f"{service}:" + "".join(part.title() for part in method.split("_"))


def _block(text: str, start: int) -> str:
    """The ``{ ... }`` block whose opening brace is the first one at or after ``start``."""
    opening = text.index("{", start)
    depth = 0
    for index in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[opening : index + 1]
    raise ValueError("unbalanced braces")


def policy_document(name: str) -> str:
    """The body of ``data "aws_iam_policy_document" "<name>"`` in iam.tf."""
    return _block(IAM, IAM.index(f'data "aws_iam_policy_document" "{name}"'))


def _list(body: str, attribute: str) -> list[str]:
    """The items of ``<attribute> = [...]``, brackets inside an item (``queue_arns["x"]``) kept."""
    match = re.search(rf"\b{attribute}\s*=\s*\[", body)
    if not match:
        return []
    items, depth, item = [], 0, ""
    for character in body[match.end() :]:
        if character == "]" and depth == 0:
            break
        depth += {"[": 1, "]": -1}.get(character, 0)
        if character == "," and depth == 0:
            items.append(item)
            item = ""
        else:
            item += character
    items.append(item)
    return [entry.strip().strip('"') for entry in items if entry.strip()]


def _resources(statement: str) -> list[str]:
    """The statement's resources: the items of its list, or the one expression that is the list."""
    expression = re.search(r"\bresources\s*=\s*(\S.*)$", statement, re.MULTILINE)
    if expression and not expression.group(1).startswith("["):
        return [expression.group(1).strip()]
    return _list(statement, "resources")


def _locals() -> dict[str, str]:
    return dict(re.findall(r'^\s*([a-z_]+)\s*=\s*"([^"]*)"\s*$', _block(IAM, IAM.index("locals")), re.MULTILINE))


def statement_bodies(name: str) -> list[str]:
    """The text of every ``statement { ... }`` of a policy document, its source documents' included."""
    body = policy_document(name)
    found = [_block(body, match.start()) for match in re.finditer(r"\bstatement\s*\{", body)]
    for source in SOURCE_DOCUMENT.findall(body):
        found.extend(statement_bodies(source))
    return found


def statements(name: str) -> list[tuple[set[str], set[str]]]:
    """(actions, resources) of every statement of a policy document, with its source documents',
    each ``local.<name>`` resource replaced by its value."""
    body = policy_document(name)
    values = _locals()
    found = []
    for match in re.finditer(r"\bstatement\s*\{", body):
        statement = _block(body, match.start())
        resources = {values.get(item.removeprefix("local."), item) for item in _resources(statement)}
        found.append((set(_list(statement, "actions")), resources))
    for source in SOURCE_DOCUMENT.findall(body):
        found.extend(statements(source))
    return found


def allowed_on(name: str, resource: str) -> set[str]:
    """The actions the policy document ``name`` allows on exactly ``resource``."""
    return set().union(*(actions for actions, resources in statements(name) if resource in resources))


def einvoice_prefix() -> str:
    """The key prefix of every e-invoice file: the leading text of ``object_key``'s f-string."""
    tree = ast.parse(EINVOICES_USE_CASE.read_text())
    (function,) = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == "object_key"]
    (returned,) = [node.value for node in ast.walk(function) if isinstance(node, ast.Return)]
    assert isinstance(returned, ast.JoinedStr) and isinstance(returned.values[0], ast.Constant)
    return str(returned.values[0].value).split("/")[0] + "/"


EINVOICE_BUCKET = "module.data.einvoice_bucket_arn"
ALL_QUEUES = "values(module.data.queue_arns)"
DOCUMENT_MAIL_QUEUE = 'module.data.queue_arns["document-mail"]'
MAIL_IDENTITY = "module.data.mail_identity_arn"
MAIL_CONFIGURATION_SET = "module.data.mail_configuration_set_arn"
# The IAM actions SES authorizes each SES v2 call of the mail adapter by: SendEmail is ses:SendEmail on the
# identity and on the configuration set it names (Service Authorization Reference, Amazon SES v2); with
# raw content SES also checks ses:SendRawEmail on the identity (its AccessDenied names that action).
SES_ACTIONS = {"send_email": {"ses:SendEmail", "ses:SendRawEmail"}}
# What each consumer does with the messages of its queues (billing_core.adapters.sqs).
CONSUMER_ACTIONS = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:SendMessage",
    "sqs:GetQueueAttributes",
}
EINVOICE_OBJECTS = f"${{{EINVOICE_BUCKET}}}/{einvoice_prefix()}*"
DATA_KEY = "module.data.kms_key_arn"

# The FOCUS cost export (cost_source = "focus"): both cost readers call the adapters. Each adapter's
# boto3 calls are read from its module; until a module exists, the calls it is written to make.
COST_READERS = ("billing_api", "scheduler_worker")
FOCUS_EXPORT_ADAPTER = "focus_export.py"  # S3: each period's manifest, then the Parquet files it lists
FOCUS_ATHENA_ADAPTER = "focus_athena.py"  # Athena: start a query, poll it, read its rows
FOCUS_EXPORT_CALLS = {"list_objects_v2", "get_object"}
FOCUS_ATHENA_CALLS = {"start_query_execution", "get_query_execution", "get_query_results"}
FOCUS_BUCKET = "local.focus_export_bucket"
FOCUS_OBJECTS = "local.focus_export_objects"
FOCUS_WORKGROUP = "local.focus_workgroup"
FOCUS_GLUE = "local.focus_glue_resources"
FOCUS_RESULTS_BUCKET = "local.focus_results_bucket"
FOCUS_RESULTS_OBJECTS = "local.focus_results_objects"
# The IAM action and resource S3 authorizes each call of the export adapter by: ListObjectsV2 is
# s3:ListBucket on the bucket, GetObject s3:GetObject on the object.
FOCUS_S3_ACTIONS = {"list_objects_v2": ("s3:ListBucket", FOCUS_BUCKET), "get_object": ("s3:GetObject", FOCUS_OBJECTS)}
# What Athena does with the caller's permissions for each query (Athena: access to Glue and S3): read
# the table's definition, list and read its files, write the result, encrypted with the data key.
ATHENA_ON_BEHALF = {
    FOCUS_GLUE: {"glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"},
    FOCUS_BUCKET: {"s3:ListBucket", "s3:GetBucketLocation"},
    FOCUS_OBJECTS: {"s3:GetObject"},
    FOCUS_RESULTS_BUCKET: {"s3:ListBucket", "s3:GetBucketLocation"},
    FOCUS_RESULTS_OBJECTS: {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},
    DATA_KEY: {"kms:GenerateDataKey", "kms:Decrypt"},
}


def adapter_calls(module: str, written_to_make: set[str]) -> set[str]:
    """The boto3 calls of an adapter module, or the ones it is written to make while it does not exist."""
    return client_calls(module) if (ADAPTERS / module).exists() else written_to_make


def test_every_dynamodb_operation_of_the_adapters_is_allowed():
    calls = client_calls("dynamodb.py", "dynamodb_events.py")

    assert {"get_item", "query", "scan", "transact_write_items"} <= calls  # the walk finds the real calls
    missing = {action("dynamodb", call) for call in calls} - set(re.findall(r'"(dynamodb:[A-Za-z]+)"', IAM))
    assert not missing, f"iam.tf allows none of {sorted(missing)}"


def test_the_worker_and_the_api_may_scan_the_tables_they_list():
    for policy in ("billing_api", "scheduler_worker"):
        assert "local.scan_actions" in policy_document(policy), policy


def test_every_sqs_operation_of_the_adapters_is_allowed():
    calls = client_calls("sqs.py")

    assert "send_message_batch" in calls
    missing = {action("sqs", call) for call in calls} - set(re.findall(r'"(sqs:[A-Za-z]+)"', IAM))
    # SendMessageBatch is authorized by sqs:SendMessage (AWS: batch actions use the single action's permission).
    missing = {
        m.replace("SendMessageBatch", "SendMessage")
        .replace("DeleteMessageBatch", "DeleteMessage")
        .replace("ChangeMessageVisibilityBatch", "ChangeMessageVisibility")
        for m in missing
    } - set(re.findall(r'"(sqs:[A-Za-z]+)"', IAM))
    assert not missing, f"iam.tf allows none of {sorted(missing)}"


def test_every_s3_call_of_the_document_store_has_its_action_and_every_method_a_role():
    per_method = client_calls_per_method("s3_documents.py")
    calls = set().union(*per_method.values())

    assert {"head_object", "put_object", "get_object"} <= calls  # the walk finds the real calls
    assert calls <= set(S3_ACTIONS), f"name the IAM action of {sorted(calls - set(S3_ACTIONS))} in S3_ACTIONS"
    assert set(per_method) == set().union(*DOCUMENT_STORE_USE.values()), "say which roles call each method"


@pytest.mark.parametrize("policy", sorted(DOCUMENT_STORE_USE))
def test_each_role_may_make_the_s3_calls_of_the_document_store_methods_it_uses(policy):
    per_method = client_calls_per_method("s3_documents.py")
    needed = {S3_ACTIONS[call] for method in DOCUMENT_STORE_USE[policy] for call in per_method[method]}

    missing = needed - allowed_on(policy, EINVOICE_OBJECTS)

    assert not missing, f"{policy} needs {sorted(missing)} on {EINVOICE_OBJECTS}"


@pytest.mark.parametrize("policy", sorted(DOCUMENT_STORE_USE))
def test_each_role_that_reads_a_file_learns_a_missing_one_as_404(policy):
    # S3 answers a HEAD or GET of a missing key with 404 only to a caller with s3:ListBucket, else 403;
    # the adapter takes 404 for "not written yet" and raises on 403.
    per_method = client_calls_per_method("s3_documents.py")
    calls = {call for method in DOCUMENT_STORE_USE[policy] for call in per_method[method]}

    assert calls & {"head_object", "get_object"}
    assert "s3:ListBucket" in allowed_on(policy, EINVOICE_BUCKET), policy


@pytest.mark.parametrize("policy", sorted(DOCUMENT_STORE_USE))
def test_each_role_may_use_the_data_key_for_the_files_it_reads_and_writes(policy):
    per_method = client_calls_per_method("s3_documents.py")
    calls = {call for method in DOCUMENT_STORE_USE[policy] for call in per_method[method]}
    needed = {"kms:Decrypt"} | ({"kms:GenerateDataKey"} if "put_object" in calls else set())

    assert needed <= allowed_on(policy, "module.data.kms_key_arn"), policy


def test_the_webhook_receiver_gets_no_s3_access():
    assert not any(a.startswith("s3:") for actions, _ in statements("webhook_receiver") for a in actions)


def test_no_role_may_delete_a_file_or_touch_its_lock():
    granted = {a for policy in DOCUMENT_STORE_USE for actions, _ in statements(policy) for a in actions}

    assert not {a for a in granted if a.startswith("s3:") and ("Delete" in a or "Retention" in a or a == "s3:*")}


def test_the_worker_consumes_every_queue_the_data_module_creates():
    # queue_arns has one entry per queue of the module, which test_terraform_apply holds to resources.QUEUES.
    assert CONSUMER_ACTIONS <= allowed_on("scheduler_worker", ALL_QUEUES)


def test_billing_api_may_queue_document_mails_and_use_no_other_queue():
    sqs_resources = {
        resource
        for actions, resources in statements("billing_api")
        if any(a.startswith("sqs:") for a in actions)
        for resource in resources
    }

    assert sqs_resources == {DOCUMENT_MAIL_QUEUE}
    assert {"sqs:SendMessage", "sqs:GetQueueAttributes"} <= allowed_on("billing_api", DOCUMENT_MAIL_QUEUE)
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= allowed_on("billing_api", "module.data.kms_key_arn")


def test_every_ses_call_of_the_mail_adapter_is_allowed_to_the_worker_on_the_identity_and_configuration_set():
    calls = client_calls("ses_mail.py")

    assert "send_email" in calls  # the walk finds the real call
    assert calls <= set(SES_ACTIONS), f"name the IAM actions of {sorted(calls - set(SES_ACTIONS))} in SES_ACTIONS"
    needed = set().union(*(SES_ACTIONS[call] for call in calls))
    for resource in (MAIL_IDENTITY, MAIL_CONFIGURATION_SET):
        missing = needed - allowed_on("scheduler_worker", resource)
        assert not missing, f"scheduler_worker needs {sorted(missing)} on {resource}"


def test_the_worker_sends_mail_only_from_the_invoice_sender_through_its_identity():
    ses_statements = [body for body in statement_bodies("scheduler_worker") if '"ses:' in body]

    assert ses_statements
    for body in ses_statements:
        assert set(_resources(body)) == {MAIL_IDENTITY, MAIL_CONFIGURATION_SET}
        assert re.search(r'variable\s*=\s*"ses:FromAddress"', body)
        assert _list(body, "values") == ["module.data.mail_from"]


def test_only_the_worker_may_send_mail():
    for policy in ("billing_api", "webhook_receiver"):
        assert not any(a.startswith("ses:") for actions, _ in statements(policy) for a in actions), policy


# --- the FOCUS cost export ---------------------------------------------------------------------------


def test_the_focus_documents_exist_only_with_the_focus_export_and_go_to_both_cost_readers():
    assert re.search(r"count\s*=\s*local\.focus_enabled \? 1 : 0", policy_document("read_focus_export"))
    assert re.search(r"count\s*=\s*local\.focus_athena_enabled \? 1 : 0", policy_document("query_focus_athena"))
    for policy in COST_READERS:
        body = policy_document(policy)
        assert "data.aws_iam_policy_document.read_focus_export[*].json" in body, policy
        assert "data.aws_iam_policy_document.query_focus_athena[*].json" in body, policy
    assert "focus" not in policy_document("webhook_receiver")


@pytest.mark.parametrize("policy", COST_READERS)
def test_each_cost_reader_may_make_every_s3_call_of_the_focus_export_adapter(policy):
    calls = adapter_calls(FOCUS_EXPORT_ADAPTER, FOCUS_EXPORT_CALLS)

    assert "get_object" in calls  # the walk finds the real calls
    assert calls <= set(FOCUS_S3_ACTIONS), f"name the IAM action of {sorted(calls - set(FOCUS_S3_ACTIONS))}"
    for call in calls:
        needed, resource = FOCUS_S3_ACTIONS[call]
        assert needed in allowed_on(policy, resource), f"{policy} needs {needed} on {resource} for {call}"
    # The files are encrypted with the data key.
    assert "kms:Decrypt" in allowed_on(policy, DATA_KEY)


@pytest.mark.parametrize("policy", COST_READERS)
def test_each_cost_reader_learns_a_missing_manifest_as_404(policy):
    # The adapter takes NoSuchKey (404) for "this period is not delivered yet"; S3 answers a GET of a
    # missing key with 404 only to a caller that may list the bucket, and with 403 otherwise.
    assert "get_object" in adapter_calls(FOCUS_EXPORT_ADAPTER, FOCUS_EXPORT_CALLS)
    assert "s3:ListBucket" in allowed_on(policy, FOCUS_BUCKET), policy


def test_the_cost_readers_may_list_only_the_export_folder_and_read_nothing_else_of_the_bucket():
    for policy in COST_READERS:
        for body in statement_bodies(policy):
            if FOCUS_BUCKET in _resources(body) and '"s3:ListBucket"' in body:
                assert re.search(r'variable\s*=\s*"s3:prefix"', body), body
                assert _list(body, "values") == ["local.focus_export_folder", "${local.focus_export_folder}/*"]
        readable = {
            resource for actions, resources in statements(policy) if "s3:GetObject" in actions for resource in resources
        }
        assert FOCUS_BUCKET not in readable and f"${{{FOCUS_BUCKET}}}/*" not in readable, policy


@pytest.mark.parametrize("policy", COST_READERS)
def test_each_cost_reader_may_make_every_athena_call_of_the_athena_adapter_in_the_workgroup_only(policy):
    calls = adapter_calls(FOCUS_ATHENA_ADAPTER, FOCUS_ATHENA_CALLS)
    needed = {action("athena", call) for call in calls}

    assert "start_query_execution" in calls  # the walk finds the real calls
    assert needed <= allowed_on(policy, FOCUS_WORKGROUP), f"{policy} needs {sorted(needed)} on {FOCUS_WORKGROUP}"
    athena_resources = {
        resource
        for actions, resources in statements(policy)
        if any(a.startswith("athena:") for a in actions)
        for resource in resources
    }
    assert athena_resources == {FOCUS_WORKGROUP}, policy


@pytest.mark.parametrize("policy", COST_READERS)
def test_each_cost_reader_allows_what_athena_does_on_its_behalf(policy):
    for resource, needed in ATHENA_ON_BEHALF.items():
        missing = needed - allowed_on(policy, resource)
        assert not missing, f"{policy} needs {sorted(missing)} on {resource}"
