/**
 * @signet/client: a thin client for signet, the central authorization service
 * for services that receive Upstash QStash / Workflow requests.
 *
 * - `SignetReceiver` is a drop-in for `@upstash/qstash`'s `Receiver`
 *   (`serve(routeFn, { receiver: new SignetReceiver({ address }) })`).
 * - `authorizeBearer` / `authorizeRequest` go at the top of a route function
 *   and of a `failureFunction`.
 *
 * Bodies are hashed locally (only 32 bytes cross the wire), every call has a
 * deadline, `UNAVAILABLE` is retried a bounded number of times, and the client
 * fails closed: an error is never an allow.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as path from "node:path";

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** Connection and retry settings. */
export interface SignetOptions {
  /** signet's address: `host:port` (an `http://` prefix is accepted). Default: `SIGNET_ADDRESS`, then `127.0.0.1:50051`. */
  address?: string;
  /** Deadline of each attempt, in milliseconds. Default 1000. */
  timeoutMs?: number;
  /** Attempts after the first when signet answers `UNAVAILABLE`. Default 2. */
  retries?: number;
  /** First backoff in milliseconds, doubled on each retry. Default 50. */
  backoffMs?: number;
  /** Channel credentials. Default: plaintext (signet inside the cluster network). */
  credentials?: grpc.ChannelCredentials;
}

// ---------------------------------------------------------------------------
// Messages (camelCase, as @grpc/proto-loader presents them)

export type SignatureReason =
  | "SIGNATURE_REASON_UNSPECIFIED"
  | "SIGNATURE_REASON_OK"
  | "SIGNATURE_REASON_MISSING"
  | "SIGNATURE_REASON_MALFORMED"
  | "SIGNATURE_REASON_UNSUPPORTED_ALGORITHM"
  | "SIGNATURE_REASON_NO_KEY_MATCHED"
  | "SIGNATURE_REASON_EXPIRED"
  | "SIGNATURE_REASON_NOT_YET_VALID"
  | "SIGNATURE_REASON_WRONG_ISSUER"
  | "SIGNATURE_REASON_URL_MISMATCH"
  | "SIGNATURE_REASON_BODY_MISMATCH"
  | "SIGNATURE_REASON_MISSING_CLAIM"
  | "SIGNATURE_REASON_TOO_LARGE"
  | "SIGNATURE_REASON_UNKNOWN_REGION"
  | "SIGNATURE_REASON_REPLAYED";

export type KeySlot = "KEY_SLOT_UNSPECIFIED" | "KEY_SLOT_CURRENT" | "KEY_SLOT_NEXT";

export interface SignatureClaims {
  issuer: string;
  subject: string;
  expiresAt: number;
  notBefore: number;
  issuedAt: number;
  jwtId: string;
  bodyHash: string;
}

export interface VerifySignatureResponse {
  valid: boolean;
  reason: SignatureReason;
  keySlot: KeySlot;
  message: string;
  claims: SignatureClaims | null;
}

export type BearerReason =
  | "BEARER_REASON_UNSPECIFIED"
  | "BEARER_REASON_OK"
  | "BEARER_REASON_MISSING"
  | "BEARER_REASON_MALFORMED"
  | "BEARER_REASON_EXPIRED"
  | "BEARER_REASON_NOT_YET_VALID"
  | "BEARER_REASON_BAD_SIGNATURE"
  | "BEARER_REASON_UNKNOWN_KEY_ID"
  | "BEARER_REASON_WRONG_ISSUER"
  | "BEARER_REASON_WRONG_AUDIENCE"
  | "BEARER_REASON_MISSING_SCOPE"
  | "BEARER_REASON_UNKNOWN_API_KEY"
  | "BEARER_REASON_MISSING_CLAIM"
  | "BEARER_REASON_ALGORITHM_NOT_ALLOWED"
  | "BEARER_REASON_KIND_NOT_ALLOWED"
  | "BEARER_REASON_REPLAYED";

export type CredentialKind =
  | "CREDENTIAL_KIND_UNSPECIFIED"
  | "CREDENTIAL_KIND_JWT"
  | "CREDENTIAL_KIND_API_KEY";

export interface AuthorizeBearerResponse {
  allowed: boolean;
  reason: BearerReason;
  message: string;
  subject: string;
  issuer: string;
  scopes: string[];
  expiresAt: number;
  /** The verified JWT claims as a `google.protobuf.Struct` (JWT only). */
  claims: unknown;
  credentialKind: CredentialKind;
}

export type AuthorizeReason =
  | "AUTHORIZE_REASON_UNSPECIFIED"
  | "AUTHORIZE_REASON_OK"
  | "AUTHORIZE_REASON_SIGNATURE_DENIED"
  | "AUTHORIZE_REASON_BEARER_DENIED"
  | "AUTHORIZE_REASON_NO_CHECK_PASSED";

export interface AuthorizeResponse {
  allowed: boolean;
  reason: AuthorizeReason;
  message: string;
  failureCallback: boolean;
  signature: VerifySignatureResponse | null;
  bearer: AuthorizeBearerResponse | null;
  subject: string;
}

/** What `verify` takes: the same shape as `@upstash/qstash`'s `VerifyRequest`. */
export interface VerifyRequest {
  /** The `Upstash-Signature` header value. */
  signature: string;
  /** The raw request body, exactly as received. */
  body: string | Uint8Array;
  /** The URL QStash was asked to call; omitted or empty: `sub` is not checked. */
  url?: string;
  /** Seconds of leeway on `exp`/`nbf` (capped by the server). */
  clockTolerance?: number;
  /** The `upstash-region` header, for multi-region key selection. */
  upstashRegion?: string;
}

/** The request was not signed by QStash (same name and role as `@upstash/qstash`'s). */
export class SignatureError extends Error {
  /** Why, as signet's `SignatureReason`. */
  readonly reason: SignatureReason;
  constructor(message: string, reason: SignatureReason = "SIGNATURE_REASON_UNSPECIFIED") {
    super(message);
    this.name = "SignatureError";
    this.reason = reason;
  }
}

/** signet gave no decision (unreachable, deadline, bad call). Treat it as a denial. */
export class SignetCallError extends Error {
  /** The gRPC status code. */
  readonly code: grpc.status;
  constructor(code: grpc.status, details: string) {
    super(`signet call failed: ${grpc.status[code] ?? code}: ${details}`);
    this.name = "SignetCallError";
    this.code = code;
  }
}

// ---------------------------------------------------------------------------
// One channel per process (per address)

// The package's own copy of the proto: <package>/proto, next to dist/ (or two
// levels up when the tests run the compiled sources from dist-test/src/).
const PROTO_PATH = [path.join(__dirname, ".."), path.join(__dirname, "..", "..")]
  .map((root) => path.join(root, "proto", "signet", "v1", "signet.proto"))
  .find((candidate) => existsSync(candidate)) ?? path.join(__dirname, "..", "proto", "signet", "v1", "signet.proto");

type Unary<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Res) => void,
) => grpc.ClientUnaryCall;

interface AuthorizerStub extends grpc.Client {
  verifySignature: Unary<Record<string, unknown>, VerifySignatureResponse>;
  authorizeBearer: Unary<Record<string, unknown>, AuthorizeBearerResponse>;
  authorize: Unary<Record<string, unknown>, AuthorizeResponse>;
}

type AuthorizerCtor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => AuthorizerStub;

let authorizerCtor: AuthorizerCtor | undefined;

function loadAuthorizer(): AuthorizerCtor {
  if (!authorizerCtor) {
    const definition = protoLoader.loadSync(PROTO_PATH, {
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      signet: { v1: { Authorizer: AuthorizerCtor } };
    };
    authorizerCtor = loaded.signet.v1.Authorizer;
  }
  return authorizerCtor;
}

const stubs = new Map<string, AuthorizerStub>();

function normalizeAddress(address: string): string {
  return address.replace(/^https?:\/\//, "").replace(/\/+$/, "");
}

function stubFor(address: string, credentials?: grpc.ChannelCredentials): AuthorizerStub {
  // Callers passing their own credentials get their own channel; everyone
  // else shares one per address.
  if (credentials) {
    const Ctor = loadAuthorizer();
    return new Ctor(address, credentials);
  }
  let stub = stubs.get(address);
  if (!stub) {
    const Ctor = loadAuthorizer();
    stub = new Ctor(address, grpc.credentials.createInsecure());
    stubs.set(address, stub);
  }
  return stub;
}

/** Closes every shared channel (tests, graceful shutdown). */
export function closeAllChannels(): void {
  for (const stub of stubs.values()) stub.close();
  stubs.clear();
}

function sha256(body: string | Uint8Array): Buffer {
  return createHash("sha256").update(body).digest();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One incoming HTTP request, for `authorize`. A Fetch API `Request` also works. */
export interface HttpRequestLike {
  method: string;
  url: string;
  /** A `Headers`, or name → value(s). */
  headers: Headers | Record<string, string | string[] | undefined> | Iterable<[string, string]>;
  body?: string | Uint8Array | null;
}

export interface AuthorizeOptions {
  /** Named policy; empty or omitted: the default policy. */
  policy?: string;
  /** Named key set for the signature check. */
  keySet?: string;
}

function headerPairs(headers: HttpRequestLike["headers"]): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  if (typeof (headers as Headers).forEach === "function" && typeof (headers as Headers).get === "function") {
    (headers as Headers).forEach((value, name) => out.push({ name, value }));
    return out;
  }
  if (Symbol.iterator in (headers as object)) {
    for (const [name, value] of headers as Iterable<[string, string]>) out.push({ name, value });
    return out;
  }
  for (const [name, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.push({ name, value: v });
  }
  return out;
}

function isFailureCallback(pairs: { name: string; value: string }[]): boolean {
  return pairs.some(
    ({ name, value }) =>
      (name.toLowerCase() === "upstash-workflow-is-failure" && value.toLowerCase() === "true") ||
      (name.toLowerCase() === "upstash-workflow-failure-callback" && value !== ""),
  );
}

/**
 * A handle on signet. Cheap: all clients for one address share one channel.
 */
export class SignetClient {
  readonly address: string;
  private readonly stub: AuthorizerStub;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;

  constructor(options: SignetOptions = {}) {
    this.address = normalizeAddress(options.address ?? process.env.SIGNET_ADDRESS ?? "127.0.0.1:50051");
    this.stub = stubFor(this.address, options.credentials);
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.retries = options.retries ?? 2;
    this.backoffMs = options.backoffMs ?? 50;
  }

  private async call<Res>(method: "verifySignature" | "authorizeBearer" | "authorize", message: Record<string, unknown>): Promise<Res> {
    let backoff = this.backoffMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<Res>((resolve, reject) => {
          const rpc = this.stub[method] as unknown as Unary<Record<string, unknown>, Res>;
          rpc.call(this.stub, message, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }, (error, response) => {
            if (error) reject(error);
            else if (response === undefined) reject(new SignetCallError(grpc.status.INTERNAL, "empty response"));
            else resolve(response);
          });
        });
      } catch (e) {
        const error = e as grpc.ServiceError;
        if (error instanceof SignetCallError) throw error;
        if (error.code === grpc.status.UNAVAILABLE && attempt < this.retries) {
          await sleep(backoff);
          backoff *= 2;
          continue;
        }
        throw new SignetCallError(error.code ?? grpc.status.UNKNOWN, error.details ?? String(error));
      }
    }
  }

  /** Verifies an `Upstash-Signature`; the decision is in `valid` (a denial is not an error). */
  verifySignature(request: VerifyRequest & { keySet?: string }): Promise<VerifySignatureResponse> {
    const message: Record<string, unknown> = {
      signature: request.signature ?? "",
      bodySha256: sha256(request.body ?? ""),
      url: request.url ?? "",
      keySet: request.keySet ?? "",
      region: request.upstashRegion ?? "",
    };
    if (request.clockTolerance !== undefined) {
      message.clockToleranceSeconds = Math.max(0, Math.floor(request.clockTolerance));
    }
    return this.call("verifySignature", message);
  }

  /** Checks an `Authorization` header value (or bare token) against a policy. */
  authorizeBearer(authorization: string | null | undefined, options: { policy?: string } = {}): Promise<AuthorizeBearerResponse> {
    return this.call("authorizeBearer", { authorization: authorization ?? "", policy: options.policy ?? "" });
  }

  /**
   * Authorizes a whole request (signature, bearer, failure callbacks). A
   * Fetch `Request` is read from a clone, so the caller can still read it.
   */
  async authorize(request: Request | HttpRequestLike, options: AuthorizeOptions = {}): Promise<AuthorizeResponse> {
    let body: Uint8Array;
    if (typeof Request !== "undefined" && request instanceof Request) {
      body = new Uint8Array(await request.clone().arrayBuffer());
    } else {
      const raw = (request as HttpRequestLike).body ?? "";
      body = typeof raw === "string" ? Buffer.from(raw, "utf8") : raw;
    }
    const headers = headerPairs(request.headers);
    // A failure callback carries the original request in its body, so signet
    // needs the body itself there; elsewhere the digest suffices.
    const message: Record<string, unknown> = {
      method: request.method,
      url: request.url,
      headers,
      policy: options.policy ?? "",
      keySet: options.keySet ?? "",
    };
    if (isFailureCallback(headers)) message.body = Buffer.from(body);
    else message.bodySha256 = sha256(body);
    return this.call("authorize", message);
  }
}

/**
 * A drop-in for `@upstash/qstash`'s `Receiver`, backed by signet: the signing
 * keys stay in signet. `verify` resolves `true` or throws a `SignatureError`
 * (and a `SignetCallError` when signet gives no decision).
 */
export class SignetReceiver {
  readonly client: SignetClient;
  private readonly keySet?: string;

  constructor(options: SignetOptions & { keySet?: string; client?: SignetClient } = {}) {
    this.client = options.client ?? new SignetClient(options);
    this.keySet = options.keySet;
  }

  async verify(request: VerifyRequest): Promise<boolean> {
    const response = await this.client.verifySignature({ ...request, keySet: this.keySet });
    if (!response.valid) {
      throw new SignatureError(response.message || "signature invalid", response.reason);
    }
    return true;
  }
}

let defaultClient: SignetClient | undefined;

/** The client the free functions use: configured here, or from `SIGNET_ADDRESS`. */
export function configureSignet(options: SignetOptions): SignetClient {
  defaultClient = new SignetClient(options);
  return defaultClient;
}

function clientFor(client?: SignetClient): SignetClient {
  if (client) return client;
  defaultClient ??= new SignetClient();
  return defaultClient;
}

/**
 * At the top of a route function or `failureFunction`:
 * `const auth = await authorizeBearer(context.headers.get("authorization"), { policy: "workflow" })`;
 * stop unless `auth.allowed`. Throws `SignetCallError` when signet gives no decision.
 */
export function authorizeBearer(
  authorizationHeader: string | null | undefined,
  options: { policy?: string; client?: SignetClient } = {},
): Promise<AuthorizeBearerResponse> {
  return clientFor(options.client).authorizeBearer(authorizationHeader, options);
}

/** Authorizes a whole incoming request (signature + bearer + failure callbacks) against a policy. */
export function authorizeRequest(
  request: Request | HttpRequestLike,
  options: AuthorizeOptions & { client?: SignetClient } = {},
): Promise<AuthorizeResponse> {
  return clientFor(options.client).authorize(request, options);
}
