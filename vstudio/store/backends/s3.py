"""A backend on any S3-compatible service through boto3 (AWS, MinIO, B2, Wasabi, R2).

URL: ``s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=R``; credentials come from the
standard AWS chain (environment, ``~/.aws``, instance roles). boto3's own retries are off:
``RetryBackend`` retries, so every backend behaves the same. Errors are translated here,
at the edge, into one-line messages that say what to do.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

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
                     if endpoint else {"payload_signing_enabled": False},
                     # SigV4 named, not left to botocore: its default for pre-signed URLs
                     # is SigV2, which leaves the Range header out of the signature (such a
                     # URL reads the whole pack). Requests are SigV4 already; every S3
                     # service takes it.
                     signature_version="s3v4")
        self._session = boto3.session.Session()
        self.client = self._session.client("s3", endpoint_url=endpoint, region_name=region,
                                           config=cfg)
        self._lock = threading.Lock()
        self._object_urls: dict[str, str] = {}  # pack -> its URL, unsigned (see presign_range)
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

    def presign_range(self, name: str, offset: int, length: int, expires: int = 3600) -> str:
        """A URL anyone can GET ``length`` bytes of the object from ``offset`` with, for
        ``expires`` seconds, and nothing else: SigV4 signs the Range header, so a request
        with another range (or none) fails its signature check at the bucket.

        Signed here rather than by ``generate_presigned_url`` for each run: a plan has one
        URL per run, hundreds for a file of many pieces, and botocore's ~1 ms per URL
        (its event and endpoint machinery) would make plans slower than the reads they
        save. botocore still names the object's URL (once per object, kept) and the
        credentials; tests check each signature against botocore's own signer."""
        base = self._object_urls.get(name)
        if base is None:
            if len(self._object_urls) > 4096:
                self._object_urls.clear()
            base = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(name)},
                ExpiresIn=expires).split("?", 1)[0]
            self._object_urls[name] = base
        creds = self._session.get_credentials()
        if creds is None:
            raise BackendUnavailable("no AWS credentials: set AWS_ACCESS_KEY_ID and "
                                     "AWS_SECRET_ACCESS_KEY (or configure ~/.aws)")
        return _presign_v4(base, f"bytes={offset}-{offset + length - 1}", expires,
                           creds.get_frozen_credentials(), self.client.meta.region_name)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _presign_v4(url: str, byte_range: str, expires: int, creds: Any, region: str) -> str:
    """``url`` pre-signed for a GET with exactly ``byte_range`` (AWS Signature Version 4,
    query form, the Range header signed with the host; the body is not signed)."""
    parts = urlsplit(url)
    now = time.gmtime()
    amz_date, day = time.strftime("%Y%m%dT%H%M%SZ", now), time.strftime("%Y%m%d", now)
    scope = f"{day}/{region}/s3/aws4_request"
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": f"{creds.access_key}/{scope}", "X-Amz-Date": amz_date,
              "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host;range"}
    if creds.token:
        params["X-Amz-Security-Token"] = creds.token
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(params.items()))
    canonical = (f"GET\n{parts.path or '/'}\n{query}\nhost:{parts.netloc}\n"
                 f"range:{byte_range}\n\nhost;range\nUNSIGNED-PAYLOAD")
    to_sign = (f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
               f"{hashlib.sha256(canonical.encode()).hexdigest()}")
    key = _hmac(("AWS4" + creds.secret_key).encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{query}&X-Amz-Signature={signature}"
