// SignetReceiver and SignetClient against the real signet binary.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";

import { Receiver as QStashReceiver } from "@upstash/qstash";

import { SignatureError, SignetCallError, SignetClient, SignetReceiver, closeAllChannels } from "../src/index";
import { DEV_CURRENT, DEV_NEXT, FORGED_KEY, URL, sign, startSignet, type RunningSignet } from "./helpers";

let server: RunningSignet;
let receiver: SignetReceiver;

before(async () => {
  server = await startSignet(["--dev"]);
  receiver = new SignetReceiver({ address: server.address });
});

after(async () => {
  closeAllChannels();
  await server?.stop();
});

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail("expected a rejection");
}

describe("SignetReceiver.verify", () => {
  test("resolves true for the current and the next key", async () => {
    const body = '{"hello":"world"}';
    assert.equal(await receiver.verify({ signature: sign(DEV_CURRENT, body), body, url: URL }), true);
    assert.equal(await receiver.verify({ signature: sign(DEV_NEXT, body), body }), true);
    const details = await receiver.client.verifySignature({ signature: sign(DEV_NEXT, body), body });
    assert.equal(details.keySlot, "KEY_SLOT_NEXT");
    assert.equal(details.claims?.issuer, "Upstash");
  });

  test("throws SignatureError with signet's reason for forged, altered and misdirected requests", async () => {
    const body = '{"amount":10}';
    const cases: [Parameters<SignetReceiver["verify"]>[0], string][] = [
      [{ signature: sign(FORGED_KEY, body), body }, "SIGNATURE_REASON_NO_KEY_MATCHED"],
      [{ signature: sign(DEV_CURRENT, body), body: '{"amount":1000}' }, "SIGNATURE_REASON_BODY_MISMATCH"],
      [{ signature: sign(DEV_CURRENT, body), body, url: `${URL}/` }, "SIGNATURE_REASON_URL_MISMATCH"],
      [{ signature: "", body }, "SIGNATURE_REASON_MISSING"],
      [{ signature: "not.a.jwt", body }, "SIGNATURE_REASON_MALFORMED"],
    ];
    for (const [request, reason] of cases) {
      const e = await rejection(receiver.verify(request));
      assert.ok(e instanceof SignatureError, `${reason}: ${e}`);
      assert.equal(e.name, "SignatureError");
      assert.equal((e as SignatureError).reason, reason);
    }
  });

  test("clockTolerance is passed through", async () => {
    const body = "late";
    const now = Math.floor(Date.now() / 1000);
    const expired = sign(DEV_CURRENT, body, URL, { now: now - 320, ttl: 300 });
    const e = await rejection(receiver.verify({ signature: expired, body }));
    assert.equal((e as SignatureError).reason, "SIGNATURE_REASON_EXPIRED");
    assert.equal(await receiver.verify({ signature: expired, body, clockTolerance: 60 }), true);
  });

  test("hashes the body locally: a body over the server's message limit verifies", async () => {
    const body = new Uint8Array(9 * 1024 * 1024).fill(7); // > server.max_message_bytes (8 MiB)
    assert.equal(await receiver.verify({ signature: sign(DEV_CURRENT, body), body }), true);
  });

  test("agrees with @upstash/qstash's Receiver (same keys)", async () => {
    const reference = new QStashReceiver({ currentSigningKey: DEV_CURRENT, nextSigningKey: DEV_NEXT });
    const body = '{"n":1}';
    const requests = [
      { signature: sign(DEV_CURRENT, body), body, url: URL },
      { signature: sign(DEV_NEXT, body), body },
      { signature: sign(FORGED_KEY, body), body },
      { signature: sign(DEV_CURRENT, body), body: '{"n":2}' },
      { signature: sign(DEV_CURRENT, body), body, url: "https://other.example/api" },
    ];
    for (const request of requests) {
      const ours = await receiver.verify(request).then(
        (v) => v,
        (e: Error) => e.name,
      );
      const theirs = await reference.verify(request).then(
        (v) => v,
        (e: Error) => e.name,
      );
      assert.equal(ours, theirs, JSON.stringify(request));
    }
  });
});

describe("failing closed", () => {
  test("no signing keys: UNAVAILABLE after bounded retries, never true", async () => {
    const keyless = await startSignet([]);
    try {
      const r = new SignetReceiver({ address: keyless.address, retries: 2, backoffMs: 10 });
      const started = Date.now();
      const e = await rejection(r.verify({ signature: sign(DEV_CURRENT, ""), body: "" }));
      assert.ok(e instanceof SignetCallError, String(e));
      assert.equal((e as SignetCallError).code, 14);
      assert.ok(Date.now() - started < 2000);
    } finally {
      await keyless.stop();
    }
  });

  test("server down: SignetCallError", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const r = new SignetReceiver({ address: `127.0.0.1:${port}`, retries: 1, backoffMs: 10 });
    const e = await rejection(r.verify({ signature: "a.b.c", body: "" }));
    assert.ok(e instanceof SignetCallError, String(e));
  });

  test("a server that never answers: DEADLINE_EXCEEDED within the deadline", async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const r = new SignetReceiver({ address: `http://127.0.0.1:${port}`, timeoutMs: 300, retries: 0 });
      const started = Date.now();
      const e = await rejection(r.verify({ signature: "a.b.c", body: "" }));
      assert.ok(e instanceof SignetCallError, String(e));
      assert.equal((e as SignetCallError).code, 4);
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    } finally {
      sockets.forEach((s) => s.destroy());
      silent.close();
    }
  });
});

test("one channel per process and address", () => {
  const a = new SignetClient({ address: server.address }) as unknown as { stub: unknown };
  const b = new SignetClient({ address: `http://${server.address}` }) as unknown as { stub: unknown };
  assert.equal(a.stub, b.stub);
});
