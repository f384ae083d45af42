"""``DocumentStore`` over S3: each e-invoice file written once under its key."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from billing_core.ports import DocumentStore

_ABSENT = {"404", "NoSuchKey", "NotFound"}


class S3DocumentStore(DocumentStore):
    """Files in one bucket (private, encrypted and versioned by Terraform; retained by Object Lock)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self._bucket = bucket

    def __repr__(self) -> str:
        return f"S3DocumentStore({self._bucket!r})"

    def put_once(self, key: str, body: bytes, content_type: str) -> bool:
        """HEAD, then PUT only when absent: a resumed job never rewrites an issued invoice's file."""
        try:
            self._s3.head_object(Bucket=self._bucket, Key=key)
            return False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _ABSENT:
                raise
        # No encryption header: the bucket's default (its own KMS key, bucket key on) applies; "aws:kms"
        # without a key id would pick AWS's managed aws/s3 key instead.
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)
        return True

    def get(self, key: str) -> bytes | None:
        """The file's bytes, or None when there is no such key."""
        try:
            answer = self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _ABSENT:
                return None
            raise
        body: bytes = answer["Body"].read()
        return body
