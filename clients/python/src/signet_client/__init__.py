"""signet_client: a thin client for signet, the central authorization service
for services that receive Upstash QStash / Workflow requests.

``Receiver(...).verify(signature=, body=, url=)`` has the shape of
``qstash.Receiver`` (returns None, raises ``SignatureError``) with the keys
kept in signet; ``authorize_bearer`` and ``authorize_request`` go at the top of
a route handler and of a failure handler. The asyncio versions are in
``signet_client.aio``.

Bodies are hashed locally (only 32 bytes cross the wire), every call has a
deadline, UNAVAILABLE is retried a bounded number of times, and the client
fails closed: every error raises, nothing is ever an allow by default.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, TypeVar

import grpc

from signet_client._common import (
    Body,
    Headers,
    Options,
    SignatureError,
    SignetCallError,
    address_of,
    authorize_message,
    bearer_request,
    header_value,
    raise_unless_valid,
    verify_request,
)
from signet_client._pb import signet_pb2 as pb
from signet_client._pb import signet_pb2_grpc as pb_grpc

__all__ = [
    "Options",
    "Receiver",
    "SignatureError",
    "SignetCallError",
    "SignetClient",
    "authorize_bearer",
    "authorize_request",
    "header_value",
    "pb",
]

T = TypeVar("T")

_channels: Dict[str, grpc.Channel] = {}
_lock = threading.Lock()


def _channel(address: str) -> grpc.Channel:
    """One channel per process and address."""
    with _lock:
        channel = _channels.get(address)
        if channel is None:
            channel = grpc.insecure_channel(address)
            _channels[address] = channel
        return channel


def close_all_channels() -> None:
    """Closes the shared channels (tests, shutdown)."""
    with _lock:
        for channel in _channels.values():
            channel.close()
        _channels.clear()


class SignetClient:
    """A handle on signet; all clients for one address share one channel."""

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        options: Options = Options(),
        channel: Optional[grpc.Channel] = None,
    ) -> None:
        self.address = address_of(address)
        self.options = options
        self._stub = pb_grpc.AuthorizerStub(channel or _channel(self.address))

    def _call(self, rpc: Callable[..., T], message) -> T:
        backoff = self.options.backoff
        attempt = 0
        while True:
            try:
                return rpc(message, timeout=self.options.timeout)
            except grpc.RpcError as error:
                code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
                if code == grpc.StatusCode.UNAVAILABLE and attempt < self.options.retries:
                    attempt += 1
                    time.sleep(backoff)
                    backoff *= 2
                    continue
                details = error.details() if hasattr(error, "details") else str(error)
                raise SignetCallError(code, details or "") from None

    def verify_signature(
        self,
        signature: Optional[str],
        body: Body,
        url: Optional[str] = None,
        *,
        clock_tolerance: int = 0,
        key_set: str = "",
        region: Optional[str] = None,
    ) -> pb.VerifySignatureResponse:
        """The decision is in ``.valid``; a denial is not an exception."""
        message = verify_request(signature, body, url, clock_tolerance, key_set, region)
        return self._call(self._stub.VerifySignature, message)

    def authorize_bearer(
        self, authorization: Optional[str], *, policy: str = ""
    ) -> pb.AuthorizeBearerResponse:
        """Checks an ``Authorization`` header value (or bare token); see ``.allowed``."""
        return self._call(self._stub.AuthorizeBearer, bearer_request(authorization, policy))

    def authorize(
        self,
        *,
        method: str,
        url: str,
        headers: Headers,
        body: Body,
        policy: str = "",
        key_set: str = "",
    ) -> pb.AuthorizeResponse:
        """Authorizes a whole request (signature, bearer, failure callbacks)."""
        message = authorize_message(method, url, headers, body, policy, key_set)
        return self._call(self._stub.Authorize, message)


class Receiver:
    """``qstash.Receiver`` with the keys kept in signet.

    ``verify`` returns None when the request was signed by QStash, raises
    ``SignatureError`` when not, and ``SignetCallError`` when signet gives no
    decision.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        key_set: str = "",
        options: Options = Options(),
        client: Optional[SignetClient] = None,
    ) -> None:
        self.client = client or SignetClient(address, options=options)
        self.key_set = key_set

    def verify(
        self,
        *,
        signature: str,
        body: Body,
        url: Optional[str] = None,
        clock_tolerance: int = 0,
        upstash_region: Optional[str] = None,
    ) -> None:
        response = self.client.verify_signature(
            signature,
            body,
            url,
            clock_tolerance=clock_tolerance,
            key_set=self.key_set,
            region=upstash_region,
        )
        raise_unless_valid(response)


_default: Optional[SignetClient] = None


def configure(address: Optional[str] = None, *, options: Options = Options()) -> SignetClient:
    """Sets the client the module functions use (default: ``SIGNET_ADDRESS``)."""
    global _default
    _default = SignetClient(address, options=options)
    return _default


def _client(client: Optional[SignetClient]) -> SignetClient:
    global _default
    if client is not None:
        return client
    if _default is None:
        _default = SignetClient()
    return _default


def authorize_bearer(
    authorization: Optional[str], *, policy: str = "", client: Optional[SignetClient] = None
) -> pb.AuthorizeBearerResponse:
    """At the top of a route or failure handler; stop unless ``.allowed``."""
    return _client(client).authorize_bearer(authorization, policy=policy)


def authorize_request(
    *,
    method: str,
    url: str,
    headers: Headers,
    body: Body,
    policy: str = "",
    client: Optional[SignetClient] = None,
) -> pb.AuthorizeResponse:
    """Authorizes a whole incoming request against a policy; stop unless ``.allowed``."""
    return _client(client).authorize(
        method=method, url=url, headers=headers, body=body, policy=policy
    )
