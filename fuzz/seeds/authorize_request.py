#!/usr/bin/env python3
"""Writes the seed corpus of the `authorize_request` fuzz target: encoded
`signet.v1.AuthorizeRequest`s carrying valid credentials for the target's
configuration (QStash tokens under the public dev key, HS256 JWTs under the
target's issuer secret, its API key), each valid until 2100.

    python3 fuzz/seeds/authorize_request.py
"""
import base64, hashlib, hmac, json, os

DEV_KEY = b"sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"  # public QStash dev-server key
HS_SECRET = b"fuzz-hs256-secret-0123456789abcdef"
API_KEY = "sk_fuzz_api_key"
URL = "https://svc.example/api/workflow"
EXP = 4102444800
OUT = os.path.join(os.path.dirname(__file__), "..", "corpus", "authorize_request")


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jws(header, claims, key):
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(mac)


def qstash(body, jti):
    claims = {"iss": "Upstash", "sub": URL, "exp": EXP, "nbf": 0, "iat": 0,
              "jti": jti, "body": b64(hashlib.sha256(body).digest())}
    return jws({"alg": "HS256", "typ": "JWT"}, claims, DEV_KEY)


JWT = jws({"alg": "HS256", "typ": "JWT", "kid": "hs"},
          {"iss": "https://fuzz.example", "sub": "user-1", "exp": EXP}, HS_SECRET)


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, value):
    value = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(value)) + value


def request(policy, headers, body=b"", digest=False):
    msg = field(1, "POST") + field(2, URL)
    for name, value in headers:
        msg += field(3, field(1, name) + field(2, value))
    msg += field(5, hashlib.sha256(body).digest()) if digest else field(4, body)
    return msg + field(6, policy)


body = b'{"order":42}'
callback = json.dumps({"status": 500, "sourceHeader": {"Authorization": ["Bearer " + JWT]},
                       "sourceBody": b64(body)}).encode()
seeds = {
    "signature": request("signature", [("Upstash-Signature", qstash(body, "j1"))], body),
    "signature_digest": request("signature", [("upstash-signature", qstash(body, "j2"))], body, True),
    "bearer_jwt": request("bearer", [("Authorization", "Bearer " + JWT)], body),
    "bearer_api_key": request("bearer", [("authorization", "Bearer " + API_KEY)], body),
    "both": request("both", [("Upstash-Signature", qstash(body, "j3")),
                             ("Authorization", "Bearer " + JWT)], body),
    "either_bearer_only": request("either", [("Authorization", "Bearer " + JWT)], body),
    "replayed": request("replayed", [("Upstash-Signature", qstash(body, "j4"))], body),
    "failure_callback": request("both", [("Upstash-Signature", qstash(callback, "j5")),
                                         ("Upstash-Workflow-Is-Failure", "true")], callback),
    "unknown_policy": request("nope", [("Authorization", "Bearer " + JWT)], body),
}
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
