"""AWS_S3: an S3 object (`arn:aws:s3:::bucket/key`, `AWS_S3:bucket/key#versionId`).

The text is decoded with the charset of its Content-Type, else with its Content-Encoding
when that names a text encoding (proc_wrapper's rule), else UTF-8; a gzip
Content-Encoding is decompressed first. The Content-Type also gives the format.
"""

from __future__ import annotations

import gzip
from typing import TYPE_CHECKING, Any

from pwsup.secrets import formats
from pwsup.secrets.errors import FetchError
from pwsup.secrets.providers import aws
from pwsup.secrets.providers.base import Fetched

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Provider:
    cacheable = True

    def __init__(self, clients: aws.AwsClients) -> None:
        self._clients = clients

    def fetch(self, address: str) -> Fetched:
        request = request_for(address)
        client: S3Client = self._clients.get("s3")
        response = aws.call("GetObject", lambda: client.get_object(**request))
        data = aws.call("GetObject", response["Body"].read)
        content_type = response.get("ContentType")
        text = decode(data, content_type, response.get("ContentEncoding"))
        return Fetched(text, formats.from_mime_type(content_type))


def request_for(address: str) -> dict[str, Any]:
    """GetObject arguments of `bucket/key[#versionId]`."""
    path, _, version = address.partition("#")
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise FetchError("an S3 address must be bucket/key")
    request: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        request["VersionId"] = version
    return request


def decode(data: bytes, content_type: str | None, content_encoding: str | None) -> str:
    encodings = [coding.strip().lower() for coding in (content_encoding or "").split(",")
                 if coding.strip()]
    if "gzip" in encodings:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            raise FetchError("the S3 object is not valid gzip data") from None
    charset = _charset(content_type) or _text_encoding(encodings) or "utf-8"
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise FetchError(f"the S3 object is not valid {charset} text") from None


def _charset(content_type: str | None) -> str | None:
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


def _text_encoding(encodings: list[str]) -> str | None:
    import codecs

    for name in encodings:
        try:
            if codecs.lookup(name)._is_text_encoding:
                return name
        except LookupError:
            continue
    return None
