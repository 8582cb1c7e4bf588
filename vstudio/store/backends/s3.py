"""A backend on any S3-compatible service through boto3 (AWS, MinIO, B2, Wasabi, R2).

URL: ``s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=R``; credentials come from the
standard AWS chain (environment, ``~/.aws``, instance roles). boto3's own retries are off:
``RetryBackend`` retries, so every backend behaves the same. Errors are translated here,
at the edge, into one-line messages that say what to do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from vstudio.errors import BackendUnavailable, BadInput, ObjectMissing, StoreError
from vstudio.store.api import Features, ObjectInfo

MULTIPART_OVER = 64 << 20


class S3Backend:
    atomic_create = True  # conditional writes (If-None-Match: *)

    def __init__(self, bucket: str, prefix: str, endpoint: str | None, region: str | None,
                 options: dict[str, Any] | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.region = region
        # Checksums only where S3 demands them: every blob carries a BLAKE3 id that each
        # read verifies, and packs are named by the hash of their bytes. For the same
        # reason bodies go out as UNSIGNED-PAYLOAD (the headers stay signed): botocore
        # would otherwise SHA-256 every body it sends (measured: 12% of the mount's CPU
        # when writing 200 MiB to moto), a second hash of bytes already hashed.
        cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                     read_timeout=60, max_pool_connections=32,
                     request_checksum_calculation="when_required",
                     response_checksum_validation="when_required",
                     s3={"payload_signing_enabled": False, "addressing_style": "path"}
                     if endpoint else {"payload_signing_enabled": False})
        self._session = boto3.session.Session()
        self.client = self._session.client("s3", endpoint_url=endpoint, region_name=region,
                                           config=cfg)
        self._lock = threading.Lock()
        self.features = Features(presign=self)

    @classmethod
    def from_url(cls, url: str, options: dict[str, Any] | None = None) -> S3Backend:
        parts = urlsplit(url)
        if not parts.netloc:
            raise BadInput(f"no bucket in {url!r}: use s3://BUCKET/PREFIX?endpoint=...")
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(q) - {"endpoint", "region"}
        if unknown:
            raise BadInput(f"unknown option(s) {', '.join(sorted(unknown))} in the store URL: "
                           "use endpoint= and region=")
        return cls(parts.netloc, parts.path, q.get("endpoint"), q.get("region"), options)

    def describe(self) -> str:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"s3://{self.bucket}/{self.prefix.rstrip('/')}{where}"

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _error(self, e: Exception, name: str = "") -> StoreError:
        """One-line store errors from boto/botocore exceptions."""
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        if isinstance(e, ClientError):
            code = str(e.response.get("Error", {}).get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in ("NoSuchKey", "404", "NotFound") and name:
                return ObjectMissing(f"{name} is missing from {self.describe()}")
            if code == "NoSuchBucket" or (code in ("404", "NotFound") and not name):
                return BackendUnavailable(
                    f"bucket {self.bucket!r} does not exist at {self.endpoint or 'AWS'}: "
                    "create it first or fix the store URL")
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied",
                        "403", "InvalidToken", "ExpiredToken") or status == 403:
                return BackendUnavailable(
                    f"access to bucket {self.bucket!r} denied ({code}): check the AWS "
                    "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws)")
            err = BackendUnavailable(f"S3 error {code or status} on {name or self.bucket}: "
                                     f"{e.response.get('Error', {}).get('Message', '')}")
            err.context["retry"] = status >= 500 or status in (408, 429) or code in (
                "SlowDown", "RequestTimeout", "InternalError")
            return err
        if isinstance(e, NoCredentialsError | PartialCredentialsError):
            return BackendUnavailable("no AWS credentials: set AWS_ACCESS_KEY_ID and "
                                      "AWS_SECRET_ACCESS_KEY (or configure ~/.aws)")
        if isinstance(e, EndpointConnectionError):
            err = BackendUnavailable(f"cannot reach the S3 endpoint "
                                     f"{self.endpoint or 'of AWS'}: check the store URL's "
                                     "endpoint= and the network")
            err.context["retry"] = True
            return err
        err = BackendUnavailable(f"S3 request failed ({type(e).__name__}: {e}): check the "
                                 "endpoint and the network")
        err.context["retry"] = True
        return err

    def _call(self, fn: Any, name: str = "", **kw: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(Bucket=self.bucket, **kw)
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, name) from None

    def put(self, name: str, data: bytes) -> None:
        self._call(self.client.put_object, name, Key=self._key(name), Body=data)

    def put_path(self, name: str, path: Path) -> None:
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.upload_file(str(path), self.bucket, self._key(name),
                                    Config=TransferConfig(multipart_threshold=MULTIPART_OVER,
                                                          multipart_chunksize=16 << 20))
        except (ClientError, BotoCoreError) as e:
            raise self._error(e, name) from None
        except Exception as e:  # boto3's transfer wraps errors in S3UploadFailedError
            raise self._error(getattr(e, "__cause__", None) or e, name) from None

    def create(self, name: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data,
                                   IfNoneMatch="*")
            return True
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise self._error(e, name) from None
        except Exception as e:
            raise self._error(e, name) from None

    def get(self, name: str) -> bytes:
        resp = self._call(self.client.get_object, name, Key=self._key(name))
        return resp["Body"].read()

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if length <= 0:
            self.stat(name)
            return b""
        resp = self._call(self.client.get_object, name, Key=self._key(name),
                          Range=f"bytes={offset}-{offset + length - 1}")
        return resp["Body"].read()

    def stat(self, name: str) -> ObjectInfo:
        resp = self._call(self.client.head_object, name, Key=self._key(name))
        return ObjectInfo(name, int(resp["ContentLength"]), resp["LastModified"].timestamp())

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        n = len(self.prefix)
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for o in page.get("Contents", []):
                    yield ObjectInfo(o["Key"][n:], int(o["Size"]),
                                     o["LastModified"].timestamp())
        except (ClientError, BotoCoreError) as e:
            raise self._error(e) from None

    def delete(self, name: str) -> None:
        self._call(self.client.delete_object, name, Key=self._key(name))

    def presign_get(self, name: str, expires: int = 3600) -> str:
        """A URL anyone can GET the object with, for ``expires`` seconds."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(name)},
            ExpiresIn=expires)
