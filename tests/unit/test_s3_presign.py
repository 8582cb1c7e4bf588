"""Ranged pre-signed URLs of the S3 backend, signed by vstudio itself (for speed), are the
very URLs botocore's own SigV4 presigner makes for the same GET with that Range."""

from __future__ import annotations

import pytest

from vstudio.store.backends.s3 import S3Backend


@pytest.mark.parametrize("endpoint,token", [("http://127.0.0.1:9000", None),
                                            (None, "session/token+with=odd chars")])
def test_ranged_urls_match_botocore(monkeypatch: pytest.MonkeyPatch, endpoint: str | None,
                                    token: str | None) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    else:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    b = S3Backend("my-bucket", "studio one", endpoint, "eu-west-3")
    name = "packs/ab cd+é~x"
    for _ in range(3):  # both within one second: X-Amz-Date is part of the URL
        ours = b.presign_range(name, 1000, 4096, 600)
        theirs = b.client.generate_presigned_url(
            "get_object", Params={"Bucket": "my-bucket", "Key": b._key(name),
                                  "Range": "bytes=1000-5095"}, ExpiresIn=600)
        if ours.split("X-Amz-Date=")[1][:16] == theirs.split("X-Amz-Date=")[1][:16]:
            break
    assert "X-Amz-SignedHeaders=host%3Brange" in ours
    # the same object URL and the same parameters, signature included (order is free)
    assert ours.split("?")[0] == theirs.split("?")[0]
    assert sorted(ours.split("?")[1].split("&")) == sorted(theirs.split("?")[1].split("&"))
