"""The S3 test server answers real S3 calls with its own credentials only."""

from __future__ import annotations

import io

import minio
import pytest
from faceblur_testenv.s3 import S3Server
from minio.error import S3Error


def test_put_and_get_roundtrip(s3_server: S3Server) -> None:
    s3_server.make_bucket("roundtrip")
    client = s3_server.client()
    client.put_object("roundtrip", "a/b.txt", io.BytesIO(b"hello"), 5)
    response = client.get_object("roundtrip", "a/b.txt")
    try:
        assert response.read() == b"hello"
    finally:
        response.close()
        response.release_conn()
    assert s3_server.env()["FACEBLUR_S3_ENDPOINT"] == s3_server.url


def test_wrong_secret_is_refused(s3_server: S3Server) -> None:
    intruder = minio.Minio(
        s3_server.endpoint, access_key=s3_server.access_key, secret_key="wrong", secure=False
    )
    with pytest.raises(S3Error):
        intruder.list_buckets()
