"""Create the AWS resources of the system in the local AWS (moto), from ``billing_core.resources``."""

from __future__ import annotations

import json
import secrets
import string
import uuid
from dataclasses import dataclass
from typing import Any

import stripe

from billing_core import resources
from local_stack.errors import StackError

SECRET_ID = "billing/stripe"
# The local sender: its domain is an SES identity of moto's (which sends without verification checks).
MAIL_DOMAIN = "beispiel-hosting.de"
MAIL_SENDER = f"rechnung@{MAIL_DOMAIN}"
MAIL_CONFIGURATION_SET = "invoice-mail"
SES_EVENTS_TOPIC = "ses-events"
ADMIN_GROUP = "admin"
OPERATOR_GROUP = "operator"


@dataclass(frozen=True)
class UserLogin:
    """A Cognito user of the local pool and the password it signs in with."""

    username: str
    password: str
    email: str
    sub: str  # the Cognito user id; tokens carry it as ``sub``
    groups: tuple[str, ...]


@dataclass(frozen=True)
class CognitoPool:
    """The local user pool, its app client and its two users."""

    user_pool_id: str
    client_id: str
    admin: UserLogin
    non_admin: UserLogin
    operator: UserLogin


def create_tables(dynamodb: Any) -> dict[str, str]:
    """Create every table (with its indexes and TTL); returns logical name -> table name."""
    names = {}
    for table in resources.TABLES:
        dynamodb.create_table(**table.create_table_kwargs(table.logical_name))
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.logical_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )
        names[table.logical_name] = table.logical_name
    for name in names.values():
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    return names


def create_queues(sqs: Any) -> dict[str, str]:
    """Create every queue with its dead-letter queue and redrive policy; returns logical name -> URL."""
    urls = {}
    for queue in resources.QUEUES:
        dlq_url = sqs.create_queue(
            QueueName=queue.dlq_name,
            Attributes={
                "MessageRetentionPeriod": str(queue.dlq_retention_seconds),
                "MaximumMessageSize": str(queue.max_message_bytes),
            },
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        urls[queue.logical_name] = sqs.create_queue(
            QueueName=queue.logical_name,
            Attributes={
                "VisibilityTimeout": str(queue.visibility_timeout_seconds),
                "MessageRetentionPeriod": str(queue.message_retention_seconds),
                "MaximumMessageSize": str(queue.max_message_bytes),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
                ),
            },
        )["QueueUrl"]
    return urls


def create_mail_delivery(sesv2: Any, sns: Any, sqs: Any, mail_events_url: str) -> dict[str, str]:
    """The sender's SES identity and configuration set, and SES's events topic delivering to ``mail-events``.

    moto does not implement configuration-set event destinations, so SES itself never publishes here: a
    test publishes SES's event to the topic as SES would, and the rest of the path (SNS raw delivery ->
    SQS -> the worker) is the real one.
    """
    sesv2.create_email_identity(EmailIdentity=MAIL_DOMAIN)
    sesv2.create_configuration_set(ConfigurationSetName=MAIL_CONFIGURATION_SET)
    topic_arn = sns.create_topic(Name=SES_EVENTS_TOPIC)["TopicArn"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=mail_events_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    return {"sender": MAIL_SENDER, "configuration_set": MAIL_CONFIGURATION_SET, "events_topic": topic_arn}


def create_einvoice_bucket(s3: Any) -> str:
    """Create the e-invoice bucket (versioned, as in AWS); returns its name."""
    name = resources.EINVOICE_BUCKET
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def store_stripe_secret(secretsmanager: Any, *, secret_key: str, publishable_key: str, webhook_secret: str) -> str:
    """Create the Stripe secret in the shape ``billing_core`` reads; returns its id."""
    secretsmanager.create_secret(
        Name=SECRET_ID,
        SecretString=json.dumps(
            {"secret_key": secret_key, "publishable_key": publishable_key, "webhook_secrets": [webhook_secret]}
        ),
    )
    return SECRET_ID


def rotate_webhook_secret(secretsmanager: Any, webhook_secret: str) -> None:
    """Make ``webhook_secret`` the current webhook secret, keeping the previous one (Stripe's roll)."""
    secret = json.loads(secretsmanager.get_secret_value(SecretId=SECRET_ID)["SecretString"])
    secret["webhook_secrets"] = [webhook_secret, *secret["webhook_secrets"][:1]]
    secretsmanager.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(secret))


def create_cognito_pool(cognito: Any) -> CognitoPool:
    """A user pool with an app client, the ``admin`` and ``operator`` groups, an admin, an operator and a
    user in neither group."""
    pool_id = cognito.create_user_pool(PoolName="billing-admins")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="billing-admin-page",
        GenerateSecret=False,  # a browser page cannot keep a client secret
        ExplicitAuthFlows=[
            "ALLOW_ADMIN_USER_PASSWORD_AUTH",
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ],
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(UserPoolId=pool_id, GroupName=ADMIN_GROUP, Description="May use the Billing tab.")
    cognito.create_group(
        UserPoolId=pool_id, GroupName=OPERATOR_GROUP, Description="The company running the billing: every account."
    )
    admin = _create_user(cognito, pool_id, "admin", "admin@example.com", groups=(ADMIN_GROUP,))
    non_admin = _create_user(cognito, pool_id, "member", "member@example.com", groups=())
    operator = _create_user(cognito, pool_id, "operator", "operator@example.com", groups=(OPERATOR_GROUP,))
    return CognitoPool(user_pool_id=pool_id, client_id=client_id, admin=admin, non_admin=non_admin, operator=operator)


def _create_user(cognito: Any, pool_id: str, username: str, email: str, groups: tuple[str, ...]) -> UserLogin:
    password = random_password()
    user = cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
    )["User"]
    # Permanent, so the first sign-in is not a NEW_PASSWORD_REQUIRED challenge.
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)
    sub = next(a["Value"] for a in user["Attributes"] if a["Name"] == "sub")
    return UserLogin(username=username, password=password, email=email, sub=sub, groups=groups)


def random_password() -> str:
    """A fresh password that satisfies Cognito's default policy (upper, lower, digit, symbol, >= 8)."""
    body = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(16))
    return f"{body}Aa1!"


def random_key(prefix: str) -> str:
    """A random Stripe-style key such as ``sk_test_...``."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


def register_webhook_endpoint(secret_key: str, stripe_api_base: str, webhook_url: str) -> str:
    """Register ``webhook_url`` for every event type with the emulator; returns its signing secret."""
    client = stripe.StripeClient(secret_key, base_addresses={"api": stripe_api_base}, max_network_retries=2)
    endpoint = client.v1.webhook_endpoints.create(
        params={"url": webhook_url, "enabled_events": ["*"], "description": "local stack webhook-receiver"},
        options={"idempotency_key": f"local-stack-webhook-endpoint-{uuid.uuid4()}"},
    )
    if not endpoint.secret:
        raise StackError("the Stripe emulator registered the webhook endpoint but returned no signing secret")
    return endpoint.secret
