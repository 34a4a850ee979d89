"""AWS_S3: an S3 object (`arn:aws:s3:::bucket/key`, `AWS_S3:bucket/key#versionId`).

The text is decoded with the charset of its Content-Type, else with its Content-Encoding
when that names a text encoding (proc_wrapper's rule), else UTF-8; a gzip
Content-Encoding is decompressed first. The Content-Type also gives the format.

At most --config-size-limit bytes are read, and at most that many come out of gzip: an
object that is larger, or a small one that decompresses to more, is an error.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from pwsup.secrets import formats
from pwsup.secrets.errors import FetchError
from pwsup.secrets.providers import aws
from pwsup.secrets.providers.base import Fetched

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3Provider:
    cacheable = True

    def __init__(self, clients: aws.AwsClients, limit: int) -> None:
        self._clients = clients
        self.limit = limit
        """The largest object read, in bytes (--config-size-limit)."""

    def fetch(self, address: str) -> Fetched:
        request = request_for(address)
        client: S3Client = self._clients.get("s3")
        response = aws.call("GetObject", lambda: client.get_object(**request))
        body = response["Body"]
        try:
            if response.get("ContentLength", 0) > self.limit:
                raise FetchError(_too_large(self.limit))
            data = aws.call("GetObject", lambda: body.read(self.limit + 1))
        finally:
            body.close()
        if len(data) > self.limit:
            raise FetchError(_too_large(self.limit))
        content_type = response.get("ContentType")
        text = decode(data, content_type, response.get("ContentEncoding"), self.limit)
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


def decode(data: bytes, content_type: str | None, content_encoding: str | None,
           limit: int | None = None) -> str:
    encodings = [coding.strip().lower() for coding in (content_encoding or "").split(",")
                 if coding.strip()]
    if "gzip" in encodings:
        data = _gunzip(data, len(data) * 1024 + 1024 if limit is None else limit)
    charset = _charset(content_type) or _text_encoding(encodings) or "utf-8"
    try:
        return data.decode(charset)
    except (UnicodeDecodeError, LookupError):
        raise FetchError(f"the S3 object is not valid {charset} text") from None


def _gunzip(data: bytes, limit: int) -> bytes:
    """gzip data decompressed, refusing more than `limit` bytes of output (a small object
    can decompress to gigabytes)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise FetchError("the S3 object is not valid gzip data") from None
    if len(out) > limit:
        raise FetchError(_too_large(limit) + " once decompressed")
    if not inflater.eof:
        raise FetchError("the S3 object is not valid gzip data (truncated)")
    return out


def _too_large(limit: int) -> str:
    return f"the S3 object is larger than the limit of {limit} bytes (--config-size-limit)"


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
