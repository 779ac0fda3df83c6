"""Runs the real `signet` binary for the Envoy ext_authz tests.

`SIGNET_BIN` overrides the binary (default: target/release/signet).
"""

import os
import pathlib
import subprocess

import grpc
import pytest
from envoy_data_plane.envoy.service.auth.v3 import AuthorizationSyncStub

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("SIGNET_BIN", str(ROOT / "target" / "release" / "signet"))

# The public QStash dev-server keys (`serve --dev`) and a key nobody trusts.
CURRENT = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
NEXT = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"
UNTRUSTED = "sig_testCurrent4b9Qx7LmN2pR8sT1v"
URL = "https://svc.example/api/workflow"


def _clean_env():
    return {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("QSTASH") or k.startswith("SIGNET") or "_QSTASH_" in k or k == "RUST_LOG")
    }


class Server:
    """A `signet serve` process on 127.0.0.1:0 and a channel to it."""

    def __init__(self, *args):
        if not os.access(BIN, os.X_OK):
            pytest.fail(f"{BIN} not built: run `cargo build --release` first")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--listen", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_clean_env(),
            text=True,
        )
        first = self.proc.stdout.readline().strip()
        prefix = "signet listening on "
        if not first.startswith(prefix):
            self.proc.kill()
            pytest.fail(f"unexpected first line from signet: {first!r}")
        self.addr = first[len(prefix):]
        self.channel = grpc.insecure_channel(self.addr)
        self.stub = AuthorizationSyncStub(self.channel)

    def close(self):
        self.channel.close()
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="session")
def dev_server():
    server = Server("--dev")
    yield server
    server.close()


@pytest.fixture(scope="session")
def keyless_server():
    server = Server()
    yield server
    server.close()


def sign(body: bytes, key: str = CURRENT, url: str = URL) -> str:
    """A QStash-format token made by `signet sign`."""
    out = subprocess.run(
        [BIN, "sign", "--key", key, "--url", url, "--body-file", "-"],
        input=body,
        capture_output=True,
        check=True,
        env=_clean_env(),
    )
    return out.stdout.decode().strip()
