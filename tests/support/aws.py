"""A moto server of its own for adapter and contract tests, with tables and queues as ``resources`` defines them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from billing_core import resources
from local_stack.moto_server import BackgroundMotoServer

REGION = "eu-central-1"


@dataclass
class LocalAws:
    """A running moto server; ``info`` has the local stack's stack.json keys (endpoint, region, tables, queues)."""

    info: dict[str, Any]

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` against the server."""
        return boto3.client(
            service,
            region_name=self.info["region"],
            endpoint_url=self.info["aws_endpoint"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"mode": "standard", "max_attempts": 2}),
        )

    def create_table(self, table: resources.Table) -> str:
        """A fresh table shaped like ``table`` (TTL on where it has one); returns its name."""
        name = f"{table.logical_name}-{uuid.uuid4().hex[:8]}"
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(**table.create_table_kwargs(name))
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute}
            )
        return name

    def create_queue(self, queue: resources.Queue, suffix: str | None = None) -> str:
        """A fresh queue and its DLQ as ``resources`` defines them; returns the queue URL."""
        suffix = suffix or uuid.uuid4().hex[:8]
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(QueueName=f"{queue.dlq_name}-{suffix}")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return str(
            sqs.create_queue(
                QueueName=f"{queue.logical_name}-{suffix}",
                Attributes={
                    "VisibilityTimeout": str(queue.visibility_timeout_seconds),
                    "RedrivePolicy": json.dumps(
                        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
                    ),
                },
            )["QueueUrl"]
        )


def running_aws() -> Iterator[LocalAws]:
    """A moto server with one set of the system's tables and queues (for a module-scoped fixture)."""
    server = BackgroundMotoServer().start()
    local = LocalAws({"aws_endpoint": server.endpoint, "region": REGION, "tables": {}, "queues": {}})
    try:
        for table in resources.TABLES:
            local.info["tables"][table.logical_name.replace("-", "_")] = local.create_table(table)
        for queue in resources.QUEUES:
            local.info["queues"][queue.logical_name.replace("-", "_")] = local.create_queue(queue)
        yield local
    finally:
        server.stop()
