"""A QStash / Upstash Workflow endpoint as a plain ASGI app (works under any
ASGI server: ``uvicorn examples.asgi_workflow:app``), guarded by signet.

Every request must be signed by QStash (checked by signet, which holds the
signing keys), and the route handler AND the failure handler each check the
bearer credential first: a failure callback is a signed QStash request that
anyone who can make QStash call the route can trigger, so it must be
authorized like the route itself.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Awaitable, Callable, Dict, List, Optional

from signet_client.aio import (
    Receiver,
    SignatureError,
    SignetCallError,
    authorize_bearer,
    header_value,
)

POLICY = os.environ.get("SIGNET_POLICY", "workflow")


def create_app(
    address: Optional[str] = None,
    *,
    policy: str = POLICY,
    public_url: Optional[str] = None,
    events: Optional[List[str]] = None,
):
    """``address``: signet (default ``SIGNET_ADDRESS``). ``public_url``: the URL
    QStash calls, compared with the signature's ``sub`` when given.
    ``events``: where the handlers record what they did (for the tests)."""
    receiver = Receiver(address)
    client = receiver.client
    log = events if events is not None else []

    async def route_handler(headers, payload: dict) -> Dict:
        auth = await authorize_bearer(header_value(headers, "authorization"), policy=policy, client=client)
        if not auth.allowed:
            return {"status": 401, "body": {"error": auth.message or "unauthorized"}}
        log.append(f"route: order {payload.get('order')} for {auth.subject or 'api key'}")
        return {"status": 200, "body": {"ok": True}}

    async def failure_handler(headers, callback: dict) -> Dict:
        # The original request's headers come back as real headers, so the
        # credential is checked exactly as in the route handler.
        auth = await authorize_bearer(header_value(headers, "authorization"), policy=policy, client=client)
        if not auth.allowed:
            return {"status": 401, "body": {"error": auth.message or "unauthorized"}}
        source = json.loads(base64.b64decode(callback.get("sourceBody") or "e30=") or b"{}")
        log.append(f"failure: run {callback.get('workflowRunId')} status {callback.get('status')} order {source.get('order')}")
        return {"status": 200, "body": {"ok": True}}

    async def app(scope, receive: Callable[[], Awaitable[dict]], send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = scope["headers"]
        try:
            await receiver.verify(
                signature=header_value(headers, "upstash-signature") or "",
                body=body,
                url=public_url,
            )
            is_failure = (header_value(headers, "upstash-workflow-is-failure") or "").lower() == "true"
            payload = json.loads(body or b"{}")
            if is_failure:
                result = await failure_handler(headers, payload)
            else:
                result = await route_handler(headers, payload)
        except SignatureError as e:
            result = {"status": 401, "body": {"error": "invalid signature", "reason": e.reason}}
        except SignetCallError:
            # No decision from signet: fail closed; QStash retries a 5xx.
            result = {"status": 503, "body": {"error": "authorization unavailable"}}
        data = json.dumps(result["body"]).encode()
        await send(
            {
                "type": "http.response.start",
                "status": result["status"],
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return app


app = create_app()
