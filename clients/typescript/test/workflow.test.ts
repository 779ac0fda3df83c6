// End to end, the seed's situation: an Upstash Workflow endpoint made with the
// real @upstash/workflow `serve()`, verifying with SignetReceiver, whose route
// function and failureFunction both call authorizeBearer first. QSTASH_URL
// points at a local stand-in for the QStash API that records what the
// workflow publishes.
//
// Cases that need an allowed bearer skip (with a message) while the server
// does not implement AuthorizeBearer, unless SIGNET_REQUIRE_BEARER=1. Cases
// where the route must NOT run are checked either way: without bearer
// support the client fails closed.
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test, type TestContext } from "node:test";

import type { serve as serveFn } from "@upstash/workflow";

import { SignetClient, SignetReceiver, authorizeBearer, closeAllChannels } from "../src/index";
import {
  DEV_CURRENT,
  DEV_NEXT,
  FORGED_KEY,
  URL,
  sign,
  startBearerSignet,
  startSignet,
  type BearerFixture,
  type RunningSignet,
} from "./helpers";

interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A stand-in for the QStash REST API: records requests, answers like QStash. */
async function startQStashStandIn(): Promise<{ url: string; requests: Recorded[]; close: () => Promise<void> }> {
  const requests: Recorded[] = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
      res.setHeader("content-type", "application/json");
      if (req.url?.startsWith("/v2/batch")) {
        const items = JSON.parse(body) as unknown[];
        res.end(JSON.stringify(items.map(() => ({ messageId: `msg_standin_${++n}` }))));
      } else if (req.url?.startsWith("/v2/publish")) {
        res.end(JSON.stringify({ messageId: `msg_standin_${++n}` }));
      } else {
        res.end("{}");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // the SDK's fetch keeps connections alive
      }),
  };
}

let signet: RunningSignet;
let skip: string | undefined;
let fixture: BearerFixture;
let standIn: Awaited<ReturnType<typeof startQStashStandIn>>;
let handler: (request: Request) => Promise<Response>;
const calls = { route: 0, stepsRun: [] as string[], failureRuns: [] as string[], failureCalls: 0 };

before(async () => {
  const bearer = await startBearerSignet();
  fixture = bearer.fixture;
  skip = bearer.skip;
  signet = bearer.server ?? (await startSignet(["--dev"]));
  standIn = await startQStashStandIn();

  // What a service would have in its environment; no signing keys: they live in signet.
  process.env.QSTASH_URL = standIn.url;
  process.env.QSTASH_TOKEN = "stand-in-token";
  delete process.env.QSTASH_CURRENT_SIGNING_KEY;
  delete process.env.QSTASH_NEXT_SIGNING_KEY;
  delete process.env.QSTASH_DEV;
  // Loaded after the environment is set, as in a real process.
  const { serve } = require("@upstash/workflow") as { serve: typeof serveFn };

  const client = new SignetClient({ address: signet.address });
  const policy = fixture.policy;

  // ---- the service's code: route function and failure function, both guarded ----
  handler = serve<{ order: number }>(
    async (context) => {
      calls.route++;
      const auth = await authorizeBearer(context.headers.get("authorization"), { policy, client });
      if (!auth.allowed) {
        return; // stops before the first step: nothing is published
      }
      await context.run("charge", async () => {
        calls.stepsRun.push(`charge ${context.requestPayload.order}`);
        return "charged";
      });
    },
    {
      receiver: new SignetReceiver({ client }),
      failureFunction: async ({ context, failStatus }) => {
        calls.failureCalls++;
        const auth = await authorizeBearer(context.headers.get("authorization"), { policy, client });
        if (!auth.allowed) {
          return;
        }
        calls.failureRuns.push(`failed with ${failStatus} for run ${context.workflowRunId}`);
        return "alerted";
      },
    },
  ).handler;
});

after(async () => {
  closeAllChannels();
  await signet?.stop();
  await standIn?.close();
});

function reset() {
  standIn.requests.length = 0;
  calls.route = 0;
  calls.stepsRun.length = 0;
  calls.failureRuns.length = 0;
  calls.failureCalls = 0;
}

function needsBearer(t: TestContext): boolean {
  if (skip) {
    t.skip(skip);
    return false;
  }
  return true;
}

const initialBody = JSON.stringify({ order: 42 });

/** The first call QStash makes to a workflow endpoint. */
function firstCall(signingKey: string, authorization: string, body = initialBody): Request {
  return new Request(URL, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "upstash-signature": sign(signingKey, body),
      authorization,
      "user-agent": "Upstash-QStash",
    },
    body,
  });
}

/** QStash calling back with the initial payload: the route runs its first step. */
function stepCall(signingKey: string, authorization: string): Request {
  const body = JSON.stringify([
    { messageId: "msg_init", body: Buffer.from(initialBody).toString("base64"), callType: "step" },
  ]);
  return new Request(URL, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "upstash-signature": sign(signingKey, body),
      "upstash-workflow-sdk-version": "1",
      "upstash-workflow-runid": "wfr_e2e",
      "upstash-workflow-init": "false",
      authorization,
    },
    body,
  });
}

/** A Workflow failure callback, with the original Authorization forwarded as a real header. */
function failureCallback(signingKey: string, authorization: string): Request {
  const body = JSON.stringify({
    status: 500,
    header: { "content-type": ["application/json"] },
    body: Buffer.from(JSON.stringify({ message: "charge failed" })).toString("base64"),
    url: URL,
    method: "POST",
    sourceHeader: { Authorization: [authorization] },
    sourceBody: Buffer.from(initialBody).toString("base64"),
    sourceMessageId: "msg_source",
    workflowRunId: "wfr_e2e",
    retried: 3,
    maxRetries: 3,
  });
  return new Request(URL, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "upstash-signature": sign(signingKey, body),
      "upstash-workflow-is-failure": "true",
      "upstash-workflow-failure-callback": "true",
      "upstash-workflow-runid": "wfr_e2e",
      authorization,
    },
    body,
  });
}

describe("Upstash Workflow serve() with SignetReceiver and authorizeBearer", () => {
  test("signed request with a valid token: the route runs and the stand-in sees the next step", async (t) => {
    if (!needsBearer(t)) return;
    reset();
    const res = await handler(firstCall(DEV_CURRENT, `Bearer ${fixture.apiKey}`));
    assert.equal(res.status, 200, await res.clone().text());
    assert.equal(calls.route, 1);
    const batch = standIn.requests.find((r) => r.method === "POST" && r.path.startsWith("/v2/batch"));
    assert.ok(batch, `stand-in saw ${JSON.stringify(standIn.requests.map((r) => r.path))}`);
    assert.equal(batch.headers.authorization, "Bearer stand-in-token");
    const [message] = JSON.parse(batch.body) as { destination: string; headers: Record<string, string>; body: string }[];
    assert.equal(message.destination, URL);
    assert.equal(message.headers["upstash-workflow-init"], "true");
    // The caller's credential travels with the run, so the next call is authorized too.
    assert.equal(message.headers["upstash-forward-authorization"], `Bearer ${fixture.apiKey}`);
    assert.equal(message.body, initialBody);
  });

  test("the next call runs the first step and publishes its result", async (t) => {
    if (!needsBearer(t)) return;
    reset();
    const res = await handler(stepCall(DEV_NEXT, `Bearer ${fixture.apiKey}`));
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(calls.stepsRun, ["charge 42"]);
    assert.ok(standIn.requests.some((r) => r.body.includes("charged")), JSON.stringify(standIn.requests));
  });

  test("forged signature: rejected as serve rejects (HTTP 500), the route never runs", async () => {
    reset();
    for (const req of [
      firstCall(FORGED_KEY, `Bearer ${fixture.apiKey}`),
      stepCall(FORGED_KEY, `Bearer ${fixture.apiKey}`),
      failureCallback(FORGED_KEY, `Bearer ${fixture.apiKey}`),
    ]) {
      const res = await handler(req);
      assert.equal(res.status, 500);
      const body = (await res.json()) as { error: string; message: string };
      assert.equal(body.error, "WorkflowError");
      assert.match(body.message, /Failed to verify that the Workflow request comes from QStash/);
      assert.match(body.message, /SignatureError/);
    }
    assert.equal(calls.route, 0);
    assert.equal(calls.failureCalls, 0);
    assert.deepEqual(standIn.requests, []);
  });

  test("valid signature, bad token: the route stops before its first step", async () => {
    reset();
    for (const req of [firstCall(DEV_CURRENT, "Bearer not-a-valid-token"), stepCall(DEV_CURRENT, "Bearer not-a-valid-token")]) {
      const res = await handler(req);
      // With AuthorizeBearer: a denial, the route returns early and serve
      // answers 400 (auth-fail). Without it (UNIMPLEMENTED): the client fails
      // closed, serve answers 500.
      if (skip) {
        assert.equal(res.status, 500);
      } else {
        assert.equal(res.status, 400);
        assert.match(await res.text(), /Failed to authenticate Workflow request/);
      }
    }
    assert.equal(calls.route, 2);
    assert.deepEqual(calls.stepsRun, []);
    assert.deepEqual(standIn.requests, [], "nothing may be published");
  });

  test("failure callback with a valid forwarded token: the failure function runs", async (t) => {
    if (!needsBearer(t)) return;
    reset();
    const res = await handler(failureCallback(DEV_CURRENT, `Bearer ${fixture.apiKey}`));
    assert.equal(res.status, 200, await res.clone().text());
    assert.deepEqual(await res.json(), { result: "alerted" });
    assert.deepEqual(calls.failureRuns, ["failed with 500 for run wfr_e2e"]);
  });

  test("failure callback with a bad token: the failure function does not run", async () => {
    reset();
    const res = await handler(failureCallback(DEV_CURRENT, "Bearer not-a-valid-token"));
    assert.notEqual(res.status, 200);
    assert.deepEqual(calls.failureRuns, []);
    assert.deepEqual(standIn.requests, []);
  });
});
