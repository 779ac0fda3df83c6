"""signet_client.aio against the real binary."""

import asyncio

import grpc
import pytest

from signet_client import Options, pb
from signet_client import aio

from conftest import DEV_CURRENT, DEV_NEXT, FORGED_KEY, URL, Signet, sign


def run(coro):
    async def main():
        try:
            return await coro
        finally:
            await aio.close_all_channels()

    return asyncio.run(main())


def test_async_receiver_valid_and_forged(signet):
    async def check():
        receiver = aio.Receiver(signet.address)
        body = b'{"hello":"world"}'
        assert await receiver.verify(signature=sign(DEV_CURRENT, body), body=body, url=URL) is None
        assert await receiver.verify(signature=sign(DEV_NEXT, body), body=body) is None
        with pytest.raises(aio.SignatureError) as e:
            await receiver.verify(signature=sign(FORGED_KEY, body), body=body)
        assert e.value.reason == "SIGNATURE_REASON_NO_KEY_MATCHED"
        # Concurrent calls share one channel.
        results = await asyncio.gather(
            *(receiver.client.verify_signature(sign(DEV_CURRENT, body), body) for _ in range(20))
        )
        assert all(r.valid and r.key_slot == pb.KEY_SLOT_CURRENT for r in results)

    run(check())


def test_async_fails_closed_without_keys():
    keyless = Signet([])
    try:

        async def check():
            receiver = aio.Receiver(keyless.address, options=Options(retries=1, backoff=0.01))
            with pytest.raises(aio.SignetCallError) as e:
                await receiver.verify(signature=sign(DEV_CURRENT, ""), body="")
            assert e.value.code == grpc.StatusCode.UNAVAILABLE

        run(check())
    finally:
        keyless.stop()
