"""authorize_bearer / authorize_request (sync and asyncio) with the bearer
fixture (tests/fixtures/bearer.toml). Skipped with a message while the server
does not implement AuthorizeBearer, unless SIGNET_REQUIRE_BEARER=1."""

import asyncio
import base64
import json

from signet_client import SignetClient, aio, authorize_bearer, authorize_request, pb

from conftest import DEV_CURRENT, FORGED_KEY, URL, sign


def test_valid_api_key_allowed(bearer):
    server = bearer.require()
    client = SignetClient(server.address)
    for header in (f"Bearer {bearer.api_key}", bearer.api_key):
        r = authorize_bearer(header, policy=bearer.policy, client=client)
        assert r.allowed, r
        assert r.reason == pb.BEARER_REASON_OK
        assert r.credential_kind == pb.CREDENTIAL_KIND_API_KEY


def test_wrong_or_missing_credential_is_a_denial(bearer):
    server = bearer.require()
    client = SignetClient(server.address)
    wrong = authorize_bearer(f"Bearer {bearer.api_key}x", policy=bearer.policy, client=client)
    assert not wrong.allowed and wrong.reason != pb.BEARER_REASON_OK
    missing = authorize_bearer(None, policy=bearer.policy, client=client)
    assert not missing.allowed and missing.reason == pb.BEARER_REASON_MISSING


def test_async_authorize_bearer(bearer):
    server = bearer.require()

    async def check():
        client = aio.SignetClient(server.address)
        ok = await aio.authorize_bearer(f"Bearer {bearer.api_key}", policy=bearer.policy, client=client)
        bad = await aio.authorize_bearer("Bearer nope", policy=bearer.policy, client=client)
        await aio.close_all_channels()
        return ok, bad

    ok, bad = asyncio.run(check())
    assert ok.allowed and not bad.allowed


def _request(signature, authorization, body='{"order":42}', extra=()):
    return dict(
        method="POST",
        url=URL,
        headers=[("content-type", "application/json"), ("upstash-signature", signature), ("authorization", authorization), *extra],
        body=body,
    )


def test_authorize_request(bearer):
    server = bearer.require()
    client = SignetClient(server.address)
    body = '{"order":42}'
    ok = authorize_request(**_request(sign(DEV_CURRENT, body), f"Bearer {bearer.api_key}"), policy=bearer.policy, client=client)
    assert ok.allowed and ok.reason == pb.AUTHORIZE_REASON_OK, ok
    forged = authorize_request(**_request(sign(FORGED_KEY, body), f"Bearer {bearer.api_key}"), policy=bearer.policy, client=client)
    assert not forged.allowed
    bad = authorize_request(**_request(sign(DEV_CURRENT, body), "Bearer nope"), policy=bearer.policy, client=client)
    assert not bad.allowed


def test_authorize_failure_callback(bearer):
    server = bearer.require()
    client = SignetClient(server.address)
    callback = json.dumps(
        {
            "status": 500,
            "header": {},
            "body": base64.b64encode(b'{"message":"boom"}').decode(),
            "url": URL,
            "sourceBody": base64.b64encode(b'{"order":42}').decode(),
            "sourceHeader": {"Authorization": [f"Bearer {bearer.api_key}"]},
            "workflowRunId": "wfr_test",
        }
    )
    r = authorize_request(
        **_request(sign(DEV_CURRENT, callback), f"Bearer {bearer.api_key}", callback, [("upstash-workflow-is-failure", "true")]),
        policy=bearer.policy,
        client=client,
    )
    assert r.failure_callback
    assert r.allowed, r
