"""Envoy ext_authz v3 against the real signet binary, with Envoy's real
message definitions (PyPI envoy-data-plane) on both sides of the wire:
requests are encoded and responses decoded with them, never with signet's
hand-written subset."""

import datetime
import hashlib
import json

import grpc
import pytest
from envoy_data_plane.envoy.config.core.v3 import (
    Address,
    HeaderMap,
    HeaderValue,
    HeaderValueOptionHeaderAppendAction,
    Metadata,
    SocketAddress,
)
from envoy_data_plane.envoy.service.auth.v3 import (
    AttributeContext,
    AttributeContextHttpRequest,
    AttributeContextPeer,
    AttributeContextRequest,
    AttributeContextTlsSession,
    CheckRequest,
    CheckResponse,
)
from envoy_data_plane.envoy.type.v3 import StatusCode
from envoy_data_plane.google.protobuf import Struct

from conftest import NEXT, UNTRUSTED, Server, sign

BODY = b'{"hello":"world"}'
OK, PERMISSION_DENIED, UNAUTHENTICATED = 0, 7, 16


def check_request(headers=None, raw_body=BODY, body="", policy=None, **http_extra):
    extensions = {"signet_policy": policy} if policy is not None else {}
    return CheckRequest(
        attributes=AttributeContext(
            request=AttributeContextRequest(
                http=AttributeContextHttpRequest(
                    method="POST",
                    path="/api/workflow",
                    headers=dict(headers or {}),
                    raw_body=raw_body,
                    body=body,
                    **http_extra,
                )
            ),
            context_extensions=extensions,
        )
    )


def check(server, request: CheckRequest) -> CheckResponse:
    response = server.stub.check(request)
    assert isinstance(response, CheckResponse)
    return response


def set_headers(response: CheckResponse) -> dict:
    return {o.header.key: o.header.value for o in response.ok_response.headers}


def assert_allowed(response: CheckResponse) -> None:
    assert response.status.code == OK, response
    assert response.ok_response is not None, response
    assert response.denied_response is None


def assert_denied(response: CheckResponse, http: StatusCode, reason: str) -> dict:
    assert response.status.code != OK, response
    assert response.ok_response is None
    denied = response.denied_response
    assert denied.status.code == http
    content_type = {o.header.key: o.header.value for o in denied.headers}["content-type"]
    assert content_type == "application/json"
    body = json.loads(denied.body)
    assert body["reason"] == reason, body
    return body


@pytest.mark.parametrize("key,slot", [(None, "current"), (NEXT, "next")])
def test_signed_request_is_allowed(dev_server, key, slot):
    token = sign(BODY) if key is None else sign(BODY, key=key)
    response = check(dev_server, check_request({"upstash-signature": token}))
    assert_allowed(response)
    assert set_headers(response) == {"x-signet-key-slot": slot}
    for option in response.ok_response.headers:
        assert option.append_action == HeaderValueOptionHeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
    # A client cannot pass its own signet headers upstream.
    assert set(response.ok_response.headers_to_remove) == {"x-signet-subject", "x-signet-failure-callback"}


def test_body_string_is_used_without_pack_as_bytes(dev_server):
    token = sign(BODY)
    response = check(dev_server, check_request({"upstash-signature": token}, raw_body=b"", body=BODY.decode()))
    assert_allowed(response)


def test_non_utf8_body_verifies_from_raw_body(dev_server):
    """`pack_as_bytes: true`: the exact bytes, which a UTF-8 `body` string could not carry."""
    body = bytes(range(256))
    response = check(dev_server, check_request({"upstash-signature": sign(body)}, raw_body=body))
    assert_allowed(response)


def test_forged_signature_is_denied_401(dev_server):
    token = sign(BODY, key=UNTRUSTED)
    response = check(dev_server, check_request({"upstash-signature": token}))
    body = assert_denied(response, StatusCode.Unauthorized, "signature_no_key_matched")
    assert response.status.code == UNAUTHENTICATED
    assert body["error"] == "unauthenticated"
    assert token not in response.denied_response.body


def test_altered_body_is_denied_401(dev_server):
    token = sign(BODY)
    response = check(dev_server, check_request({"upstash-signature": token}, raw_body=b'{"hello":"World"}'))
    assert_denied(response, StatusCode.Unauthorized, "signature_body_mismatch")


def test_missing_signature_is_denied_401(dev_server):
    response = check(dev_server, check_request({"content-type": "application/json"}))
    assert_denied(response, StatusCode.Unauthorized, "signature_missing")


def test_unknown_policy_is_denied_403(dev_server):
    token = sign(BODY)
    response = check(dev_server, check_request({"upstash-signature": token}, policy="no-such-policy"))
    assert_denied(response, StatusCode.Forbidden, "unknown_policy")
    assert response.status.code == PERMISSION_DENIED


def test_request_with_fields_signet_does_not_model_still_decodes(dev_server):
    """Everything a real Envoy may send, most of it unknown to signet's subset."""
    token = sign(BODY)
    peer = AttributeContextPeer(
        address=Address(socket_address=SocketAddress(address="10.0.0.7", port_value=443)),
        service="frontend",
        labels={"app": "frontend"},
        principal="spiffe://cluster.local/ns/default/sa/frontend",
        certificate="-----BEGIN CERTIFICATE-----",
    )
    request = CheckRequest(
        attributes=AttributeContext(
            source=peer,
            destination=peer,
            request=AttributeContextRequest(
                time=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
                http=AttributeContextHttpRequest(
                    id="1234",
                    method="POST",
                    headers={"upstash-signature": token, ":authority": "svc.example"},
                    path="/api/workflow?step=1",
                    host="svc.example",
                    scheme="https",
                    query="step=1",
                    fragment="",
                    size=len(BODY),
                    protocol="HTTP/2",
                    raw_body=BODY,
                ),
            ),
            context_extensions={"signet_policy": "default", "team": "payments"},
            metadata_context=Metadata(filter_metadata={"envoy.filters.http.jwt_authn": Struct(fields={})}),
            route_metadata_context=Metadata(),
            tls_session=AttributeContextTlsSession(sni="svc.example"),
        )
    )
    assert_allowed(check(dev_server, request))


def test_raw_header_map_is_read(dev_server):
    """Envoy's `encode_raw_headers: true` sends `header_map` and no `headers`."""
    token = sign(BODY)
    request = check_request(
        headers={},
        header_map=HeaderMap(headers=[HeaderValue(key="upstash-signature", raw_value=token.encode())]),
    )
    assert_allowed(check(dev_server, request))


def test_signed_failure_callback_is_allowed_and_flagged(dev_server):
    token = sign(BODY)
    headers = {"upstash-signature": token, "upstash-workflow-is-failure": "true"}
    response = check(dev_server, check_request(headers))
    assert_allowed(response)
    assert set_headers(response)["x-signet-failure-callback"] == "true"


def test_unsigned_failure_callback_is_denied_401(dev_server):
    headers = {"upstash-workflow-is-failure": "true", "authorization": "Bearer anything"}
    response = check(dev_server, check_request(headers))
    assert_denied(response, StatusCode.Unauthorized, "signature_missing")


def test_no_keys_is_an_rpc_error_so_envoys_failure_mode_applies(keyless_server):
    with pytest.raises(grpc.RpcError) as error:
        keyless_server.stub.check(check_request({"upstash-signature": sign(BODY)}))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


API_KEY = "sk-envoy-test-key"
POLICIES = f"""
[policies.signature-and-bearer]
require = "both"
check_url = true
public_base_url = "https://svc.example/"
remove_authorization = true
api_keys = [{{ sha256 = "{hashlib.sha256(API_KEY.encode()).hexdigest()}", subject = "svc-a", scopes = [] }}]

[policies.admin-only]
require = "both"
required_scopes = ["admin"]
api_keys = [{{ sha256 = "{hashlib.sha256(API_KEY.encode()).hexdigest()}", subject = "svc-a", scopes = [] }}]
"""


@pytest.fixture(scope="module")
def policy_server(tmp_path_factory):
    config = tmp_path_factory.mktemp("signet") / "signet.toml"
    config.write_text(POLICIES)
    server = Server("--dev", "--config", str(config))
    yield server
    server.close()


def test_policy_needing_a_bearer_without_one_is_denied_401(policy_server):
    token = sign(BODY)
    response = check(policy_server, check_request({"upstash-signature": token}, policy="signature-and-bearer"))
    assert_denied(response, StatusCode.Unauthorized, "bearer_missing")


def test_failure_callback_needing_a_bearer_without_one_is_denied_401(policy_server):
    token = sign(BODY)
    headers = {"upstash-signature": token, "upstash-workflow-is-failure": "true"}
    response = check(policy_server, check_request(headers, policy="signature-and-bearer"))
    assert_denied(response, StatusCode.Unauthorized, "bearer_missing")


def test_signature_and_bearer_is_allowed_with_subject_and_authorization_removed(policy_server):
    headers = {"upstash-signature": sign(BODY), "authorization": f"Bearer {API_KEY}"}
    response = check(policy_server, check_request(headers, policy="signature-and-bearer"))
    assert_allowed(response)
    assert set_headers(response) == {"x-signet-subject": "svc-a", "x-signet-key-slot": "current"}
    assert "authorization" in response.ok_response.headers_to_remove


def test_unknown_api_key_is_denied_401(policy_server):
    headers = {"upstash-signature": sign(BODY), "authorization": "Bearer not-a-key"}
    response = check(policy_server, check_request(headers, policy="signature-and-bearer"))
    body = assert_denied(response, StatusCode.Unauthorized, "bearer_unknown_api_key")
    assert "not-a-key" not in json.dumps(body)


def test_missing_scope_is_denied_403(policy_server):
    headers = {"upstash-signature": sign(BODY), "authorization": f"Bearer {API_KEY}"}
    response = check(policy_server, check_request(headers, policy="admin-only"))
    assert_denied(response, StatusCode.Forbidden, "bearer_missing_scope")
    assert response.status.code == PERMISSION_DENIED


def test_public_base_url_plus_path_is_the_checked_url(policy_server):
    token = sign(BODY, url="https://svc.example/other")
    headers = {"upstash-signature": token, "authorization": f"Bearer {API_KEY}"}
    response = check(policy_server, check_request(headers, policy="signature-and-bearer"))
    assert_denied(response, StatusCode.Unauthorized, "signature_url_mismatch")
