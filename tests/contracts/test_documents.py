"""The e-invoice file store: the in-memory fake and S3 on moto keep one contract."""

from __future__ import annotations

import uuid

import pytest

from billing_core.adapters.s3_documents import S3DocumentStore
from tests.support.fakes import FakeDocumentStore


@pytest.fixture(params=["memory", "s3"])
def documents(request):
    if request.param == "memory":
        return FakeDocumentStore()
    aws = request.getfixturevalue("aws")
    s3 = aws.client("s3")
    bucket = f"einvoices-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": aws.info["region"]})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return S3DocumentStore(s3, bucket)


def test_a_file_is_written_once_and_read_back(documents):
    assert documents.put_once("einvoices/2026-11/u1/1.xml", b"<first/>", "application/xml") is True
    # A resumed job writes again: the issued file stays as it was.
    assert documents.put_once("einvoices/2026-11/u1/1.xml", b"<second/>", "application/xml") is False
    assert documents.get("einvoices/2026-11/u1/1.xml") == b"<first/>"


def test_a_missing_file_is_none(documents):
    assert documents.get("einvoices/2026-11/u1/missing.pdf") is None
