"""Test harness: runs the real ``signet`` binary on 127.0.0.1:0, signs
QStash-format tokens, and knows the bearer fixture."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pathlib
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import List, Optional

import pytest

import signet_client
from signet_client import SignetCallError, SignetClient

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
SIGNET_BIN = os.environ.get("SIGNET_BIN") or str(REPO / "target" / "release" / "signet")

DEV_CURRENT = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
DEV_NEXT = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"
FORGED_KEY = "sig_forgedByAnAttacker0000000000"
URL = "https://svc.example/api/workflow"

BEARER_FIXTURE = HERE / "fixtures" / "bearer.toml"
REQUIRE_BEARER = os.environ.get("SIGNET_REQUIRE_BEARER") == "1"


class Signet:
    """A running ``signet serve`` process."""

    def __init__(self, args: List[str]) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not (k.startswith(("QSTASH", "SIGNET")) or "_QSTASH_" in k or k == "RUST_LOG")
        }
        self.proc = subprocess.Popen(
            [SIGNET_BIN, "serve", "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self._stderr: List[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        line = self._first_line(timeout=10)
        m = re.fullmatch(r"signet listening on (\S+)", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"signet did not start ({line!r}); logs:\n{self.logs()}")
        self.address = m.group(1)

    def _drain(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self._stderr.append(line)

    def _first_line(self, timeout: float) -> str:
        result: List[str] = []
        reader = threading.Thread(
            target=lambda: result.append(self.proc.stdout.readline()), daemon=True  # type: ignore[union-attr]
        )
        reader.start()
        reader.join(timeout)
        if not result:
            self.stop()
            raise RuntimeError(f"signet did not print its address within {timeout}s")
        if not result[0]:
            self.proc.wait(timeout=5)
        return result[0]

    def logs(self) -> str:
        return "".join(self._stderr)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def sign(key: str, body, url: str = URL, *, ttl: int = 300, now: Optional[int] = None) -> str:
    """A QStash-format ``Upstash-Signature`` (HS256, key bytes = the key string)."""
    if isinstance(body, str):
        body = body.encode()
    now = int(time.time()) if now is None else now

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(
        json.dumps(
            {
                "iss": "Upstash",
                "sub": url,
                "exp": now + ttl,
                "nbf": now,
                "iat": now,
                "jti": "jwt_" + secrets.token_hex(6),
                "body": b64(hashlib.sha256(body).digest()),
            }
        ).encode()
    )
    mac = hmac.new(key.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(mac)}"


@dataclass
class BearerServer:
    signet: Optional[Signet]
    policy: str
    api_key: str
    skip: Optional[str]

    def require(self) -> Signet:
        if self.skip:
            pytest.skip(self.skip)
        assert self.signet is not None
        return self.signet


def _fixture_field(text: str, name: str) -> str:
    m = re.search(rf'^#\s*{name}\s*=\s*"([^"]*)"', text, re.M)
    if not m:
        raise RuntimeError(f'{BEARER_FIXTURE}: missing \'# {name} = "..."\'')
    return m.group(1)


def start_bearer_signet() -> BearerServer:
    """signet with the bearer fixture, or a reason to skip (never with SIGNET_REQUIRE_BEARER=1)."""
    text = BEARER_FIXTURE.read_text()
    policy, api_key = _fixture_field(text, "test-policy"), _fixture_field(text, "test-api-key")
    hint = "Set SIGNET_REQUIRE_BEARER=1 to make this a failure."
    try:
        server = Signet(["--dev", "--config", str(BEARER_FIXTURE)])
    except RuntimeError as e:
        why = (
            f"signet does not accept the bearer fixture configuration ({BEARER_FIXTURE}); "
            "AuthorizeBearer is not implemented on this server"
        )
        if REQUIRE_BEARER:
            raise RuntimeError(f"{why}: {e}") from None
        return BearerServer(None, policy, api_key, f"{why}. {hint}")
    try:
        SignetClient(server.address, options=signet_client.Options(retries=0)).authorize_bearer(
            "probe", policy=policy
        )
    except SignetCallError as e:
        import grpc

        if e.code == grpc.StatusCode.UNIMPLEMENTED:
            server.stop()
            why = "signet answers UNIMPLEMENTED for AuthorizeBearer"
            if REQUIRE_BEARER:
                raise RuntimeError(f"{why} but SIGNET_REQUIRE_BEARER=1") from None
            return BearerServer(None, policy, api_key, f"{why}. {hint}")
        raise
    return BearerServer(server, policy, api_key, None)


@pytest.fixture(scope="session")
def signet():
    server = Signet(["--dev"])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def bearer():
    b = start_bearer_signet()
    yield b
    if b.signet:
        b.signet.stop()
