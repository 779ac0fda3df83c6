// authorizeBearer / authorizeRequest against the real binary, with the
// bearer fixture (test/fixtures/bearer.toml). Skipped with a message while the
// server does not implement AuthorizeBearer, unless SIGNET_REQUIRE_BEARER=1.
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";

import { SignetClient, authorizeBearer, authorizeRequest, closeAllChannels } from "../src/index";
import { DEV_CURRENT, FORGED_KEY, URL, sign, startBearerSignet, type BearerFixture, type RunningSignet } from "./helpers";

let server: RunningSignet | undefined;
let fixture: BearerFixture;
let skip: string | undefined;
let client: SignetClient;

before(async () => {
  ({ server, fixture, skip } = await startBearerSignet());
  if (server) client = new SignetClient({ address: server.address });
});

after(async () => {
  closeAllChannels();
  await server?.stop();
});

function needsBearer(t: TestContext): boolean {
  if (skip) {
    t.skip(skip);
    return false;
  }
  return true;
}

describe("authorizeBearer", () => {
  test("a valid API key is allowed, as `Bearer <key>` and bare", async (t) => {
    if (!needsBearer(t)) return;
    for (const header of [`Bearer ${fixture.apiKey}`, fixture.apiKey]) {
      const r = await authorizeBearer(header, { policy: fixture.policy, client });
      assert.equal(r.allowed, true, JSON.stringify(r));
      assert.equal(r.reason, "BEARER_REASON_OK");
      assert.equal(r.credentialKind, "CREDENTIAL_KIND_API_KEY");
    }
  });

  test("a wrong or missing credential is a denial, not an error", async (t) => {
    if (!needsBearer(t)) return;
    const wrong = await authorizeBearer(`Bearer ${fixture.apiKey}x`, { policy: fixture.policy, client });
    assert.equal(wrong.allowed, false);
    assert.notEqual(wrong.reason, "BEARER_REASON_OK");
    const missing = await authorizeBearer(null, { policy: fixture.policy, client });
    assert.equal(missing.allowed, false);
    assert.equal(missing.reason, "BEARER_REASON_MISSING");
  });
});

describe("authorizeRequest", () => {
  const body = '{"order":42}';
  const request = (signature: string, authorization: string, extra: Record<string, string> = {}, b = body) =>
    new Request(URL, {
      method: "POST",
      headers: { "content-type": "application/json", "upstash-signature": signature, authorization, ...extra },
      body: b,
    });

  test("signed request with a valid bearer is allowed; the Request stays readable", async (t) => {
    if (!needsBearer(t)) return;
    const req = request(sign(DEV_CURRENT, body), `Bearer ${fixture.apiKey}`);
    const r = await authorizeRequest(req, { policy: fixture.policy, client });
    assert.equal(r.allowed, true, JSON.stringify(r));
    assert.equal(r.reason, "AUTHORIZE_REASON_OK");
    assert.equal(await req.text(), body);
  });

  test("forged signature or bad bearer is denied", async (t) => {
    if (!needsBearer(t)) return;
    const forged = await authorizeRequest(request(sign(FORGED_KEY, body), `Bearer ${fixture.apiKey}`), {
      policy: fixture.policy,
      client,
    });
    assert.equal(forged.allowed, false);
    const badBearer = await authorizeRequest(request(sign(DEV_CURRENT, body), "Bearer nope"), {
      policy: fixture.policy,
      client,
    });
    assert.equal(badBearer.allowed, false);
  });

  test("a Workflow failure callback with the forwarded credential is recognised and allowed", async (t) => {
    if (!needsBearer(t)) return;
    const callback = JSON.stringify({
      status: 500,
      header: {},
      body: Buffer.from('{"message":"boom"}').toString("base64"),
      url: URL,
      sourceBody: Buffer.from(body).toString("base64"),
      sourceHeader: { Authorization: [`Bearer ${fixture.apiKey}`] },
      workflowRunId: "wfr_test",
    });
    const r = await authorizeRequest(
      request(sign(DEV_CURRENT, callback), `Bearer ${fixture.apiKey}`, { "upstash-workflow-is-failure": "true" }, callback),
      { policy: fixture.policy, client },
    );
    assert.equal(r.failureCallback, true);
    assert.equal(r.allowed, true, JSON.stringify(r));
  });
});
