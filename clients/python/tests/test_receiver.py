"""Receiver (sync) and SignetClient against the real binary."""

import socket
import threading
import time

import grpc
import pytest
import qstash

import signet_client
from signet_client import Options, Receiver, SignatureError, SignetCallError, SignetClient, pb

from conftest import DEV_CURRENT, DEV_NEXT, FORGED_KEY, URL, Signet, sign


def test_valid_with_current_and_next_key(signet):
    receiver = Receiver(signet.address)
    body = '{"hello":"world"}'
    assert receiver.verify(signature=sign(DEV_CURRENT, body), body=body, url=URL) is None
    assert receiver.verify(signature=sign(DEV_NEXT, body), body=body.encode()) is None
    details = receiver.client.verify_signature(sign(DEV_NEXT, body), body)
    assert details.valid and details.key_slot == pb.KEY_SLOT_NEXT
    assert details.claims.issuer == "Upstash"


@pytest.mark.parametrize(
    "signature_key, body, url, reason",
    [
        (FORGED_KEY, '{"amount":10}', None, "SIGNATURE_REASON_NO_KEY_MATCHED"),
        (DEV_CURRENT, '{"amount":1000}', None, "SIGNATURE_REASON_BODY_MISMATCH"),
        (DEV_CURRENT, '{"amount":10}', URL + "/", "SIGNATURE_REASON_URL_MISMATCH"),
    ],
)
def test_denials_raise_signature_error(signet, signature_key, body, url, reason):
    signature = sign(signature_key, '{"amount":10}')
    with pytest.raises(SignatureError) as e:
        Receiver(signet.address).verify(signature=signature, body=body, url=url)
    assert e.value.reason == reason


def test_missing_and_malformed(signet):
    receiver = Receiver(signet.address)
    for signature, reason in [("", "SIGNATURE_REASON_MISSING"), ("not.a.jwt", "SIGNATURE_REASON_MALFORMED")]:
        with pytest.raises(SignatureError) as e:
            receiver.verify(signature=signature, body="")
        assert e.value.reason == reason


def test_clock_tolerance(signet):
    receiver = Receiver(signet.address)
    expired = sign(DEV_CURRENT, "late", now=int(time.time()) - 320, ttl=300)
    with pytest.raises(SignatureError) as e:
        receiver.verify(signature=expired, body="late")
    assert e.value.reason == "SIGNATURE_REASON_EXPIRED"
    receiver.verify(signature=expired, body="late", clock_tolerance=60)


def test_body_hashed_locally_large_body(signet):
    body = bytes(9 * 1024 * 1024)  # over the server's 8 MiB message limit
    Receiver(signet.address).verify(signature=sign(DEV_CURRENT, body), body=body)


def test_agrees_with_qstash_receiver(signet):
    ours = Receiver(signet.address)
    reference = qstash.Receiver(current_signing_key=DEV_CURRENT, next_signing_key=DEV_NEXT)
    body = '{"n":1}'
    requests = [
        dict(signature=sign(DEV_CURRENT, body), body=body, url=URL),
        dict(signature=sign(DEV_NEXT, body), body=body),
        dict(signature=sign(FORGED_KEY, body), body=body),
        dict(signature=sign(DEV_CURRENT, body), body='{"n":2}'),
        dict(signature=sign(DEV_CURRENT, body), body=body, url="https://other.example/api"),
    ]

    def outcome(r, request):
        try:
            r.verify(**request)
            return "ok"
        except (SignatureError, qstash.errors.SignatureError):
            return "SignatureError"

    for request in requests:
        assert outcome(ours, request) == outcome(reference, request), request


def test_no_keys_is_unavailable_after_bounded_retries():
    keyless = Signet([])
    try:
        receiver = Receiver(keyless.address, options=Options(retries=2, backoff=0.01))
        started = time.monotonic()
        with pytest.raises(SignetCallError) as e:
            receiver.verify(signature=sign(DEV_CURRENT, ""), body="")
        assert e.value.code == grpc.StatusCode.UNAVAILABLE
        assert time.monotonic() - started < 2
    finally:
        keyless.stop()


def test_server_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SignetCallError):
        Receiver(f"127.0.0.1:{port}", options=Options(retries=1, backoff=0.01)).verify(
            signature="a.b.c", body=""
        )


def test_deadline_on_a_server_that_never_answers():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        port = listener.getsockname()[1]
        receiver = Receiver(f"http://127.0.0.1:{port}", options=Options(timeout=0.3, retries=0))
        started = time.monotonic()
        with pytest.raises(SignetCallError) as e:
            receiver.verify(signature="a.b.c", body="")
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        listener.close()


def test_one_channel_per_address(signet):
    a = SignetClient(signet.address)
    b = SignetClient("http://" + signet.address)
    assert a.address == b.address
    assert signet_client._channel(a.address) is signet_client._channel(b.address)
    assert list(signet_client._channels).count(signet.address) == 1
