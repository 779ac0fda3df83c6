"""What the sync and asyncio clients share: options, errors, request building."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

import grpc

from signet_client._pb import signet_pb2 as pb

Body = Union[str, bytes, bytearray, memoryview, None]
Headers = Union[Mapping[str, Union[str, Sequence[str]]], Iterable[Tuple[str, str]]]

DEFAULT_ADDRESS = "127.0.0.1:50051"


@dataclass(frozen=True)
class Options:
    """Connection and retry settings."""

    #: Deadline of each attempt, in seconds.
    timeout: float = 1.0
    #: Attempts after the first when signet answers UNAVAILABLE.
    retries: int = 2
    #: First backoff in seconds, doubled on each retry.
    backoff: float = 0.05


class SignatureError(Exception):
    """The request was not signed by QStash (the role of ``qstash.errors.SignatureError``)."""

    def __init__(self, message: str, reason: str = "SIGNATURE_REASON_UNSPECIFIED") -> None:
        super().__init__(message)
        #: signet's ``SignatureReason`` name, e.g. ``SIGNATURE_REASON_NO_KEY_MATCHED``.
        self.reason = reason


class SignetCallError(Exception):
    """signet gave no decision (unreachable, deadline, bad call). Treat it as a denial."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"signet call failed: {code.name}: {details}")
        self.code = code


def address_of(address: Optional[str]) -> str:
    address = address or os.environ.get("SIGNET_ADDRESS") or DEFAULT_ADDRESS
    for prefix in ("http://", "https://"):
        if address.startswith(prefix):
            address = address[len(prefix):]
    return address.rstrip("/")


def to_bytes(body: Body) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    return bytes(body)


def verify_request(
    signature: Optional[str],
    body: Body,
    url: Optional[str],
    clock_tolerance: Optional[int],
    key_set: str,
    region: Optional[str],
) -> pb.VerifySignatureRequest:
    message = pb.VerifySignatureRequest(
        signature=signature or "",
        body_sha256=hashlib.sha256(to_bytes(body)).digest(),
        url=url or "",
        key_set=key_set,
        region=region or "",
    )
    if clock_tolerance:
        message.clock_tolerance_seconds = max(0, int(clock_tolerance))
    return message


def raise_unless_valid(response: pb.VerifySignatureResponse) -> None:
    if not response.valid:
        raise SignatureError(
            response.message or "signature invalid", pb.SignatureReason.Name(response.reason)
        )


def bearer_request(authorization: Optional[str], policy: str) -> pb.AuthorizeBearerRequest:
    return pb.AuthorizeBearerRequest(authorization=authorization or "", policy=policy)


def header_pairs(headers: Headers) -> list:
    pairs = []
    items: Iterable[Any]
    if hasattr(headers, "items"):
        items = headers.items()  # type: ignore[union-attr]
    else:
        items = headers
    for name, value in items:
        if isinstance(name, bytes):  # ASGI scope headers
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, (list, tuple)):
            pairs.extend((name, v) for v in value)
        else:
            pairs.append((name, value))
    return pairs


def is_failure_callback(pairs: list) -> bool:
    for name, value in pairs:
        lower = name.lower()
        if lower == "upstash-workflow-is-failure" and value.lower() == "true":
            return True
        if lower == "upstash-workflow-failure-callback" and value:
            return True
    return False


def authorize_message(
    method: str, url: str, headers: Headers, body: Body, policy: str, key_set: str
) -> pb.AuthorizeRequest:
    pairs = header_pairs(headers)
    raw = to_bytes(body)
    message = pb.AuthorizeRequest(
        method=method,
        url=url,
        headers=[pb.HttpHeader(name=n, value=v) for n, v in pairs],
        policy=policy,
        key_set=key_set,
    )
    # A failure callback carries the original request in its body, so signet
    # needs the body itself there; elsewhere the digest suffices.
    if is_failure_callback(pairs):
        message.body = raw
    else:
        message.body_sha256 = hashlib.sha256(raw).digest()
    return message


def header_value(headers: Headers, name: str) -> Optional[str]:
    """The first value of header ``name`` (case-insensitive), or None."""
    for n, v in header_pairs(headers):
        if n.lower() == name.lower():
            return v
    return None
