"""The asyncio API of signet_client (``grpc.aio``): same names, awaitable."""

from __future__ import annotations

import asyncio
import weakref
from typing import Callable, Dict, Optional

import grpc
import grpc.aio

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
]

# grpc.aio channels belong to an event loop: one per (loop, address).
_channels: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[str, grpc.aio.Channel]]" = (
    weakref.WeakKeyDictionary()
)


def _channel(address: str) -> grpc.aio.Channel:
    per_loop = _channels.setdefault(asyncio.get_running_loop(), {})
    channel = per_loop.get(address)
    if channel is None:
        channel = grpc.aio.insecure_channel(address)
        per_loop[address] = channel
    return channel


async def close_all_channels() -> None:
    """Closes this loop's shared channels (tests, shutdown)."""
    per_loop = _channels.pop(asyncio.get_running_loop(), {})
    for channel in per_loop.values():
        await channel.close()


class SignetClient:
    """All clients of one event loop and address share one channel."""

    def __init__(
        self,
        address: Optional[str] = None,
        *,
        options: Options = Options(),
        channel: Optional[grpc.aio.Channel] = None,
    ) -> None:
        self.address = address_of(address)
        self.options = options
        self._channel = channel

    def _authorizer(self) -> pb_grpc.AuthorizerStub:
        # Looked up per call: the shared channel belongs to the running loop.
        return pb_grpc.AuthorizerStub(self._channel or _channel(self.address))

    async def _call(self, name: str, message):
        backoff = self.options.backoff
        attempt = 0
        while True:
            rpc: Callable = getattr(self._authorizer(), name)
            try:
                return await rpc(message, timeout=self.options.timeout)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.options.retries:
                    attempt += 1
                    await asyncio.sleep(backoff)
                    backoff *= 2
                    continue
                raise SignetCallError(error.code(), error.details() or "") from None

    async def verify_signature(
        self,
        signature: Optional[str],
        body: Body,
        url: Optional[str] = None,
        *,
        clock_tolerance: int = 0,
        key_set: str = "",
        region: Optional[str] = None,
    ) -> pb.VerifySignatureResponse:
        message = verify_request(signature, body, url, clock_tolerance, key_set, region)
        return await self._call("VerifySignature", message)

    async def authorize_bearer(
        self, authorization: Optional[str], *, policy: str = ""
    ) -> pb.AuthorizeBearerResponse:
        return await self._call("AuthorizeBearer", bearer_request(authorization, policy))

    async def authorize(
        self,
        *,
        method: str,
        url: str,
        headers: Headers,
        body: Body,
        policy: str = "",
        key_set: str = "",
    ) -> pb.AuthorizeResponse:
        message = authorize_message(method, url, headers, body, policy, key_set)
        return await self._call("Authorize", message)


class Receiver:
    """``qstash.Receiver`` with the keys kept in signet, for asyncio code."""

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

    async def verify(
        self,
        *,
        signature: str,
        body: Body,
        url: Optional[str] = None,
        clock_tolerance: int = 0,
        upstash_region: Optional[str] = None,
    ) -> None:
        response = await self.client.verify_signature(
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


async def authorize_bearer(
    authorization: Optional[str], *, policy: str = "", client: Optional[SignetClient] = None
) -> pb.AuthorizeBearerResponse:
    return await _client(client).authorize_bearer(authorization, policy=policy)


async def authorize_request(
    *,
    method: str,
    url: str,
    headers: Headers,
    body: Body,
    policy: str = "",
    client: Optional[SignetClient] = None,
) -> pb.AuthorizeResponse:
    return await _client(client).authorize(
        method=method, url=url, headers=headers, body=body, policy=policy
    )
