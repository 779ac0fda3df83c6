// Test harness: runs the real `signet` binary on 127.0.0.1:0, signs
// QStash-format tokens, and knows the bearer fixture.
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as readline from "node:readline";

import { SignetCallError, SignetClient } from "../src/index";

/** Source tree paths (tests run from dist-test/test/). */
export const PACKAGE_DIR = path.resolve(__dirname, "..", "..");
export const REPO_DIR = path.resolve(PACKAGE_DIR, "..", "..");
export const SIGNET_BIN = process.env.SIGNET_BIN ?? path.join(REPO_DIR, "target", "release", "signet");

/** The public QStash dev-server keys (what `serve --dev` verifies with). */
export const DEV_CURRENT = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
export const DEV_NEXT = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs";
/** A key no signet instance here knows: tokens signed with it are forged. */
export const FORGED_KEY = "sig_forgedByAnAttacker0000000000";
export const URL = "https://svc.example/api/workflow";

export interface RunningSignet {
  address: string;
  logs: () => string;
  stop: () => Promise<void>;
}

/**
 * Starts `signet serve --listen 127.0.0.1:0 ...args` and resolves once it
 * printed its address; rejects (with its logs) if it exits first.
 */
export function startSignet(args: string[] = ["--dev"], env: Record<string, string> = {}): Promise<RunningSignet> {
  const cleanEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("QSTASH") || k.startsWith("SIGNET") || k.includes("_QSTASH_") || k === "RUST_LOG") continue;
    cleanEnv[k] = v;
  }
  const child: ChildProcess = spawn(SIGNET_BIN, ["serve", "--listen", "127.0.0.1:0", ...args], {
    env: { ...cleanEnv, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let logs = "";
  child.stderr!.on("data", (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`signet did not start within 10s; logs:\n${logs}`));
    }, 10_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${SIGNET_BIN} (build it: cargo build --release): ${e.message}`));
    });
    let started = false;
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`signet exited with ${code} before listening; logs:\n${logs}`));
    });
    const lines = readline.createInterface({ input: child.stdout! });
    lines.once("line", (line) => {
      clearTimeout(timer);
      const m = /^signet listening on (\S+)$/.exec(line.trim());
      if (!m) {
        child.kill("SIGKILL");
        reject(new Error(`unexpected first line ${JSON.stringify(line)}; logs:\n${logs}`));
        return;
      }
      started = true;
      resolve({
        address: m[1],
        logs: () => logs,
        stop: async () => {
          if (child.exitCode === null) child.kill("SIGTERM");
          await exited;
        },
      });
    });
  });
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** A QStash-format `Upstash-Signature` token (HS256, key bytes = the key string). */
export function sign(
  key: string,
  body: string | Uint8Array,
  url: string = URL,
  { ttl = 300, now = Math.floor(Date.now() / 1000) }: { ttl?: number; now?: number } = {},
): string {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64url(
    JSON.stringify({
      iss: "Upstash",
      sub: url,
      exp: now + ttl,
      nbf: now,
      iat: now,
      jti: `jwt_${Math.random().toString(36).slice(2)}`,
      body: createHash("sha256").update(body).digest("base64url"),
    }),
  );
  const mac = createHmac("sha256", key).update(`${header}.${claims}`).digest("base64url");
  return `${header}.${claims}.${mac}`;
}

// ---------------------------------------------------------------------------
// Bearer fixture: test/fixtures/bearer.toml is the server configuration for
// the AuthorizeBearer / Authorize tests; its comment lines `# test-policy = `
// and `# test-api-key = ` tell the tests what to send.

export const BEARER_FIXTURE = path.join(PACKAGE_DIR, "test", "fixtures", "bearer.toml");

export interface BearerFixture {
  configPath: string;
  policy: string;
  apiKey: string;
}

export function bearerFixture(): BearerFixture {
  const text = readFileSync(BEARER_FIXTURE, "utf8");
  const field = (name: string) => {
    const m = new RegExp(`^#\\s*${name}\\s*=\\s*"([^"]*)"`, "m").exec(text);
    if (!m) throw new Error(`${BEARER_FIXTURE}: missing '# ${name} = "..."'`);
    return m[1];
  };
  const dir = mkdtempSync(path.join(tmpdir(), "signet-ts-"));
  const configPath = path.join(dir, "bearer.toml");
  writeFileSync(configPath, text);
  return { configPath, policy: field("test-policy"), apiKey: field("test-api-key") };
}

export const REQUIRE_BEARER = process.env.SIGNET_REQUIRE_BEARER === "1";

/**
 * Starts signet with the bearer fixture and checks that AuthorizeBearer is
 * implemented. Returns the server, or a reason to skip. With
 * SIGNET_REQUIRE_BEARER=1 there is no skipping: it throws instead.
 */
export async function startBearerSignet(): Promise<{ server?: RunningSignet; fixture: BearerFixture; skip?: string }> {
  const fixture = bearerFixture();
  let server: RunningSignet;
  try {
    server = await startSignet(["--dev", "--config", fixture.configPath]);
  } catch (e) {
    const why = `signet does not accept the bearer fixture configuration (${BEARER_FIXTURE}); AuthorizeBearer is not implemented on this server`;
    if (REQUIRE_BEARER) throw new Error(`${why}: ${(e as Error).message}`);
    return { fixture, skip: `${why}. Set SIGNET_REQUIRE_BEARER=1 to make this a failure.` };
  }
  try {
    await new SignetClient({ address: server.address, retries: 0 }).authorizeBearer("probe", { policy: fixture.policy });
  } catch (e) {
    if (e instanceof SignetCallError && e.code === 12 /* UNIMPLEMENTED */) {
      await server.stop();
      const why = "signet answers UNIMPLEMENTED for AuthorizeBearer";
      if (REQUIRE_BEARER) throw new Error(`${why} but SIGNET_REQUIRE_BEARER=1`);
      return { fixture, skip: `${why}. Set SIGNET_REQUIRE_BEARER=1 to make this a failure.` };
    }
    throw e;
  }
  return { server, fixture };
}
