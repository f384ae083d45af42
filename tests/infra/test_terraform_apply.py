"""Terraform's data plane, applied to a local AWS (moto), is exactly what the code and the local stack use.

The environments/local-data root (modules data + cognito) is applied against a moto server; the
tables, queues, e-invoice bucket, secret and user pool it created are then described through boto3
and held to ``billing_core.resources`` (the definition the code uses) and to what
``local_stack.provision`` (the local stack) creates in the same moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from billing_core import resources
from billing_core.adapters.s3_documents import S3DocumentStore
from local_stack import provision
from tests.infra.conftest import Terraform, moto_server

REGION = "eu-central-1"
PREFIX = "tf-"
# § 14b UStG keeps invoices eight years from the end of their calendar year: the lock adds that year.
KEEPING_YEARS = 8
LOCK_YEARS = KEEPING_YEARS + 1


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    """A moto server of this module's own, on a free port."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def applied(terraform: Terraform, aws_endpoint: str) -> dict[str, Any]:
    """``terraform apply`` of local-data against moto; returns its outputs."""
    variables = ["-var", f"aws_endpoint={aws_endpoint}", "-var", f"region={REGION}", "-var", f"name_prefix={PREFIX}"]
    terraform.run("local-data", "apply", "-auto-approve", "-input=false", "-no-color", *variables)
    outputs = json.loads(terraform.run("local-data", "output", "-json").stdout)
    return {name: output["value"] for name, output in outputs.items()}


@pytest.fixture(scope="module")
def aws(aws_endpoint: str):
    """boto3 clients on the moto server."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return lambda service: session.client(service, endpoint_url=aws_endpoint)


@pytest.fixture(scope="module")
def local_stack_names(aws) -> dict[str, dict[str, str]]:
    """What the local stack's provisioning creates, in the same moto (its names carry no prefix)."""
    return {
        "tables": provision.create_tables(aws("dynamodb")),
        "queues": provision.create_queues(aws("sqs")),
        "buckets": {"einvoices": provision.create_einvoice_bucket(aws("s3"))},
    }


def _table_shape(dynamodb, name: str) -> dict[str, Any]:
    """The parts of a table the code depends on, in a comparable form."""
    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return {
        "keys": table["KeySchema"],
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]),
        "indexes": sorted(
            (index["IndexName"], json.dumps(index["KeySchema"]), index["Projection"]["ProjectionType"])
            for index in table.get("GlobalSecondaryIndexes", [])
        ),
        "billing_mode": table["BillingModeSummary"]["BillingMode"],
        "ttl": ttl.get("AttributeName") if ttl["TimeToLiveStatus"] == "ENABLED" else None,
    }


def _expected_table_shape(table: resources.Table) -> dict[str, Any]:
    kwargs = table.create_table_kwargs("unused")
    return {
        "keys": kwargs["KeySchema"],
        "attributes": sorted((a["AttributeName"], a["AttributeType"]) for a in kwargs["AttributeDefinitions"]),
        "indexes": sorted(
            (index["IndexName"], json.dumps(index["KeySchema"]), index["Projection"]["ProjectionType"])
            for index in kwargs.get("GlobalSecondaryIndexes", [])
        ),
        "billing_mode": "PAY_PER_REQUEST",
        "ttl": table.ttl_attribute,
    }


def _queue_shape(sqs, url: str) -> dict[str, Any]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    dlq_name = redrive["deadLetterTargetArn"].rsplit(":", 1)[1]
    dlq_url = sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]
    dlq_attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    return {
        "visibility_timeout_seconds": int(attributes["VisibilityTimeout"]),
        "message_retention_seconds": int(attributes["MessageRetentionPeriod"]),
        "max_receive_count": int(redrive["maxReceiveCount"]),
        "dlq_name": dlq_name,
        "dlq_retention_seconds": int(dlq_attributes["MessageRetentionPeriod"]),
        "max_message_bytes": (int(attributes["MaximumMessageSize"]), int(dlq_attributes["MaximumMessageSize"])),
    }


def _expected_queue_shape(queue: resources.Queue, prefix: str) -> dict[str, Any]:
    return {
        "visibility_timeout_seconds": queue.visibility_timeout_seconds,
        "message_retention_seconds": queue.message_retention_seconds,
        "max_receive_count": queue.max_receive_count,
        "dlq_name": prefix + queue.dlq_name,
        "dlq_retention_seconds": queue.dlq_retention_seconds,
        "max_message_bytes": (queue.max_message_bytes, queue.max_message_bytes),
    }


def test_terraform_creates_every_table_the_code_defines_and_no_other(applied) -> None:
    assert set(applied["table_names"]) == {table.logical_name for table in resources.TABLES}
    assert applied["table_names"] == {table.logical_name: PREFIX + table.logical_name for table in resources.TABLES}


@pytest.mark.parametrize("table", resources.TABLES, ids=lambda table: table.logical_name)
def test_table_keys_indexes_and_ttl_match_the_code(applied, aws, table: resources.Table) -> None:
    assert _table_shape(aws("dynamodb"), applied["table_names"][table.logical_name]) == _expected_table_shape(table)


@pytest.mark.parametrize("table", resources.TABLES, ids=lambda table: table.logical_name)
def test_table_matches_the_local_stack_table(applied, aws, local_stack_names, table: resources.Table) -> None:
    dynamodb = aws("dynamodb")
    from_terraform = _table_shape(dynamodb, applied["table_names"][table.logical_name])
    assert from_terraform == _table_shape(dynamodb, local_stack_names["tables"][table.logical_name])


@pytest.mark.parametrize("table", resources.TABLES, ids=lambda table: table.logical_name)
def test_table_has_point_in_time_recovery_and_customer_managed_encryption(applied, aws, table) -> None:
    dynamodb = aws("dynamodb")
    name = applied["table_names"][table.logical_name]
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    sse = dynamodb.describe_table(TableName=name)["Table"]["SSEDescription"]
    assert sse["SSEType"] == "KMS" and sse["KMSMasterKeyArn"].startswith("arn:aws:kms:")


def test_terraform_creates_every_queue_the_code_defines(applied) -> None:
    assert set(applied["queue_urls"]) == {queue.logical_name for queue in resources.QUEUES}


@pytest.mark.parametrize("queue", resources.QUEUES, ids=lambda queue: queue.logical_name)
def test_queue_timeouts_and_redrive_match_the_code(applied, aws, queue: resources.Queue) -> None:
    assert _queue_shape(aws("sqs"), applied["queue_urls"][queue.logical_name]) == _expected_queue_shape(queue, PREFIX)


@pytest.mark.parametrize("queue", resources.QUEUES, ids=lambda queue: queue.logical_name)
def test_queue_matches_the_local_stack_queue(applied, aws, local_stack_names, queue: resources.Queue) -> None:
    sqs = aws("sqs")
    from_terraform = _queue_shape(sqs, applied["queue_urls"][queue.logical_name])
    from_local_stack = _queue_shape(sqs, local_stack_names["queues"][queue.logical_name])
    from_terraform["dlq_name"] = from_terraform["dlq_name"].removeprefix(PREFIX)
    assert from_terraform == from_local_stack


@pytest.mark.parametrize("queue", resources.QUEUES, ids=lambda queue: queue.logical_name)
def test_queue_and_its_dead_letter_queue_are_encrypted_and_alarmed(applied, aws, queue: resources.Queue) -> None:
    sqs = aws("sqs")
    for url in (applied["queue_urls"][queue.logical_name], applied["dead_letter_queue_urls"][queue.logical_name]):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes.get("KmsMasterKeyId", "").startswith("arn:aws:kms:"), url
    alarms = aws("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    dlq_name = PREFIX + queue.dlq_name
    (alarm,) = [a for a in alarms if {"Name": "QueueName", "Value": dlq_name} in a["Dimensions"]]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and alarm["Threshold"] == 0
    assert alarm["AlarmActions"]


def test_terraform_creates_the_einvoice_bucket_the_code_names(applied, aws) -> None:
    assert applied["einvoice_bucket_name"] == PREFIX + resources.EINVOICE_BUCKET
    aws("s3").head_bucket(Bucket=applied["einvoice_bucket_name"])


def test_einvoice_bucket_is_versioned_like_the_local_stack_bucket(applied, aws, local_stack_names) -> None:
    s3 = aws("s3")
    from_terraform = s3.get_bucket_versioning(Bucket=applied["einvoice_bucket_name"]).get("Status")
    from_local_stack = s3.get_bucket_versioning(Bucket=local_stack_names["buckets"]["einvoices"]).get("Status")
    assert from_terraform == from_local_stack == "Enabled"


def test_einvoice_bucket_is_private_and_encrypted_with_the_data_key(applied, aws) -> None:
    s3 = aws("s3")
    name = applied["einvoice_bucket_name"]
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    (rule,) = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": applied["kms_key_arn"],
    }
    assert rule["BucketKeyEnabled"] is True


def test_einvoice_bucket_locks_every_file_for_the_keeping_period_and_its_year(applied, aws) -> None:
    config = aws("s3").get_object_lock_configuration(Bucket=applied["einvoice_bucket_name"])["ObjectLockConfiguration"]
    assert config["ObjectLockEnabled"] == "Enabled"
    retention = config["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Years"], retention.get("Days") or 0) == ("GOVERNANCE", LOCK_YEARS, 0)


def test_einvoice_bucket_never_expires_a_current_file_and_outlasts_the_lock_for_old_versions(applied, aws) -> None:
    rules = aws("s3").get_bucket_lifecycle_configuration(Bucket=applied["einvoice_bucket_name"])["Rules"]
    assert rules
    for rule in rules:
        assert set(rule.get("Expiration", {})) <= {"ExpiredObjectDeleteMarker"}, rule  # no Days, no Date
        noncurrent = rule.get("NoncurrentVersionExpiration")
        assert noncurrent is None or noncurrent["NoncurrentDays"] >= LOCK_YEARS * 366, rule
    assert any(rule.get("AbortIncompleteMultipartUpload") for rule in rules)


def test_einvoice_bucket_policy_refuses_plain_http_and_other_encryption(applied, aws) -> None:
    policy = json.loads(aws("s3").get_bucket_policy(Bucket=applied["einvoice_bucket_name"])["Policy"])
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    assert all(statement["Effect"] == "Deny" for statement in statements.values())
    assert statements["HttpsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements["DenyOtherKeys"]["Condition"]["StringNotEquals"] == {
        "s3:x-amz-server-side-encryption-aws-kms-key-id": applied["kms_key_arn"]
    }


def test_the_document_store_writes_each_file_once_under_the_lock_and_reads_it_back(applied, aws) -> None:
    s3 = aws("s3")
    name = applied["einvoice_bucket_name"]
    # moto evaluates no policy condition (any statement with one denies every object call, even over
    # HTTPS), so the files go in with the bucket policy set aside; the test above reads the policy.
    policy = s3.get_bucket_policy(Bucket=name)["Policy"]
    s3.delete_bucket_policy(Bucket=name)
    try:
        store = S3DocumentStore(s3, name)
        key = "einvoices/2025-01/account-1/RE-2025-0001.xml"

        assert store.put_once(key, b"<Invoice/>", "application/xml") is True
        assert store.put_once(key, b"<Other/>", "application/xml") is False
        assert store.get(key) == b"<Invoice/>"
        assert store.get("einvoices/2025-01/account-1/missing.xml") is None

        head = s3.head_object(Bucket=name, Key=key)
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert head["ObjectLockRetainUntilDate"] - head["LastModified"] >= timedelta(days=LOCK_YEARS * 365)
        with pytest.raises(ClientError):
            s3.delete_object(Bucket=name, Key=key, VersionId=head["VersionId"])
    finally:
        s3.put_bucket_policy(Bucket=name, Policy=policy)


def test_stripe_secret_exists_encrypted_and_without_a_value_from_terraform(applied, aws) -> None:
    secrets = aws("secretsmanager")
    secret = secrets.describe_secret(SecretId=applied["stripe_secret_name"])
    assert secret["KmsKeyId"].startswith("arn:aws:kms:")
    # The values are put outside Terraform, so its state never holds a Stripe key.
    assert not secret.get("VersionIdsToStages")


def test_cognito_pool_has_the_admin_group_and_a_browser_client(applied, aws) -> None:
    cognito = aws("cognito-idp")
    pool_id = applied["user_pool_id"]
    groups = {group["GroupName"] for group in cognito.list_groups(UserPoolId=pool_id)["Groups"]}
    assert applied["admin_group"] == provision.ADMIN_GROUP
    assert provision.ADMIN_GROUP in groups
    client = cognito.describe_user_pool_client(UserPoolId=pool_id, ClientId=applied["client_id"])["UserPoolClient"]
    assert "ClientSecret" not in client
    assert client["AllowedOAuthFlows"] == ["code"]
    pool = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["Domain"] == f"{PREFIX}billing-admins"


def test_ses_events_reach_the_mail_events_queue_raw_through_the_topic(applied, aws) -> None:
    sns, sqs = aws("sns"), aws("sqs")
    topic_arn = applied["ses_events_topic_arn"]
    queue_url = applied["queue_urls"][resources.MAIL_EVENTS.logical_name]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("sqs", queue_arn)
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    assert attributes["RawMessageDelivery"] == "true"
    assert sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["KmsMasterKeyId"] == applied["kms_key_arn"]

    # Raw delivery: the queue message is the event as SES published it, with no SNS envelope around it.
    event = json.dumps({"eventType": "Bounce", "mail": {"messageId": "0100-test"}})
    sns.publish(TopicArn=topic_arn, Message=event)
    (message,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert message["Body"] == event
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_only_the_ses_events_topic_may_send_to_the_mail_events_queue(applied, aws) -> None:
    queue_url = applied["queue_urls"][resources.MAIL_EVENTS.logical_name]
    attributes = aws("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["Policy", "QueueArn"])
    (statement,) = json.loads(attributes["Attributes"]["Policy"])["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] in ("sqs:SendMessage", ["sqs:SendMessage"])
    assert statement["Resource"] == attributes["Attributes"]["QueueArn"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": applied["ses_events_topic_arn"]}}


def test_ses_may_publish_to_the_ses_events_topic_for_its_configuration_set_only(applied, aws) -> None:
    policy = json.loads(
        aws("sns").get_topic_attributes(TopicArn=applied["ses_events_topic_arn"])["Attributes"]["Policy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "ses.amazonaws.com"}
    assert statement["Action"] in ("sns:Publish", ["sns:Publish"])
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}  # moto's account
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"].endswith(f":configuration-set/{PREFIX}billing-mail")
