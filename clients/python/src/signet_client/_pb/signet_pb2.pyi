from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignatureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNATURE_REASON_UNSPECIFIED: _ClassVar[SignatureReason]
    SIGNATURE_REASON_OK: _ClassVar[SignatureReason]
    SIGNATURE_REASON_MISSING: _ClassVar[SignatureReason]
    SIGNATURE_REASON_MALFORMED: _ClassVar[SignatureReason]
    SIGNATURE_REASON_UNSUPPORTED_ALGORITHM: _ClassVar[SignatureReason]
    SIGNATURE_REASON_NO_KEY_MATCHED: _ClassVar[SignatureReason]
    SIGNATURE_REASON_EXPIRED: _ClassVar[SignatureReason]
    SIGNATURE_REASON_NOT_YET_VALID: _ClassVar[SignatureReason]
    SIGNATURE_REASON_WRONG_ISSUER: _ClassVar[SignatureReason]
    SIGNATURE_REASON_URL_MISMATCH: _ClassVar[SignatureReason]
    SIGNATURE_REASON_BODY_MISMATCH: _ClassVar[SignatureReason]
    SIGNATURE_REASON_MISSING_CLAIM: _ClassVar[SignatureReason]
    SIGNATURE_REASON_TOO_LARGE: _ClassVar[SignatureReason]
    SIGNATURE_REASON_UNKNOWN_REGION: _ClassVar[SignatureReason]
    SIGNATURE_REASON_REPLAYED: _ClassVar[SignatureReason]

class KeySlot(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_SLOT_UNSPECIFIED: _ClassVar[KeySlot]
    KEY_SLOT_CURRENT: _ClassVar[KeySlot]
    KEY_SLOT_NEXT: _ClassVar[KeySlot]

class BearerReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BEARER_REASON_UNSPECIFIED: _ClassVar[BearerReason]
    BEARER_REASON_OK: _ClassVar[BearerReason]
    BEARER_REASON_MISSING: _ClassVar[BearerReason]
    BEARER_REASON_MALFORMED: _ClassVar[BearerReason]
    BEARER_REASON_EXPIRED: _ClassVar[BearerReason]
    BEARER_REASON_NOT_YET_VALID: _ClassVar[BearerReason]
    BEARER_REASON_BAD_SIGNATURE: _ClassVar[BearerReason]
    BEARER_REASON_UNKNOWN_KEY_ID: _ClassVar[BearerReason]
    BEARER_REASON_WRONG_ISSUER: _ClassVar[BearerReason]
    BEARER_REASON_WRONG_AUDIENCE: _ClassVar[BearerReason]
    BEARER_REASON_MISSING_SCOPE: _ClassVar[BearerReason]
    BEARER_REASON_UNKNOWN_API_KEY: _ClassVar[BearerReason]
    BEARER_REASON_MISSING_CLAIM: _ClassVar[BearerReason]
    BEARER_REASON_ALGORITHM_NOT_ALLOWED: _ClassVar[BearerReason]
    BEARER_REASON_KIND_NOT_ALLOWED: _ClassVar[BearerReason]
    BEARER_REASON_REPLAYED: _ClassVar[BearerReason]

class CredentialKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDENTIAL_KIND_UNSPECIFIED: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_JWT: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_API_KEY: _ClassVar[CredentialKind]

class AuthorizeReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHORIZE_REASON_UNSPECIFIED: _ClassVar[AuthorizeReason]
    AUTHORIZE_REASON_OK: _ClassVar[AuthorizeReason]
    AUTHORIZE_REASON_SIGNATURE_DENIED: _ClassVar[AuthorizeReason]
    AUTHORIZE_REASON_BEARER_DENIED: _ClassVar[AuthorizeReason]
    AUTHORIZE_REASON_NO_CHECK_PASSED: _ClassVar[AuthorizeReason]
SIGNATURE_REASON_UNSPECIFIED: SignatureReason
SIGNATURE_REASON_OK: SignatureReason
SIGNATURE_REASON_MISSING: SignatureReason
SIGNATURE_REASON_MALFORMED: SignatureReason
SIGNATURE_REASON_UNSUPPORTED_ALGORITHM: SignatureReason
SIGNATURE_REASON_NO_KEY_MATCHED: SignatureReason
SIGNATURE_REASON_EXPIRED: SignatureReason
SIGNATURE_REASON_NOT_YET_VALID: SignatureReason
SIGNATURE_REASON_WRONG_ISSUER: SignatureReason
SIGNATURE_REASON_URL_MISMATCH: SignatureReason
SIGNATURE_REASON_BODY_MISMATCH: SignatureReason
SIGNATURE_REASON_MISSING_CLAIM: SignatureReason
SIGNATURE_REASON_TOO_LARGE: SignatureReason
SIGNATURE_REASON_UNKNOWN_REGION: SignatureReason
SIGNATURE_REASON_REPLAYED: SignatureReason
KEY_SLOT_UNSPECIFIED: KeySlot
KEY_SLOT_CURRENT: KeySlot
KEY_SLOT_NEXT: KeySlot
BEARER_REASON_UNSPECIFIED: BearerReason
BEARER_REASON_OK: BearerReason
BEARER_REASON_MISSING: BearerReason
BEARER_REASON_MALFORMED: BearerReason
BEARER_REASON_EXPIRED: BearerReason
BEARER_REASON_NOT_YET_VALID: BearerReason
BEARER_REASON_BAD_SIGNATURE: BearerReason
BEARER_REASON_UNKNOWN_KEY_ID: BearerReason
BEARER_REASON_WRONG_ISSUER: BearerReason
BEARER_REASON_WRONG_AUDIENCE: BearerReason
BEARER_REASON_MISSING_SCOPE: BearerReason
BEARER_REASON_UNKNOWN_API_KEY: BearerReason
BEARER_REASON_MISSING_CLAIM: BearerReason
BEARER_REASON_ALGORITHM_NOT_ALLOWED: BearerReason
BEARER_REASON_KIND_NOT_ALLOWED: BearerReason
BEARER_REASON_REPLAYED: BearerReason
CREDENTIAL_KIND_UNSPECIFIED: CredentialKind
CREDENTIAL_KIND_JWT: CredentialKind
CREDENTIAL_KIND_API_KEY: CredentialKind
AUTHORIZE_REASON_UNSPECIFIED: AuthorizeReason
AUTHORIZE_REASON_OK: AuthorizeReason
AUTHORIZE_REASON_SIGNATURE_DENIED: AuthorizeReason
AUTHORIZE_REASON_BEARER_DENIED: AuthorizeReason
AUTHORIZE_REASON_NO_CHECK_PASSED: AuthorizeReason

class VerifySignatureRequest(_message.Message):
    __slots__ = ("signature", "body", "body_sha256", "url", "key_set", "region", "clock_tolerance_seconds")
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_SHA256_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CLOCK_TOLERANCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    signature: str
    body: bytes
    body_sha256: bytes
    url: str
    key_set: str
    region: str
    clock_tolerance_seconds: int
    def __init__(self, signature: _Optional[str] = ..., body: _Optional[bytes] = ..., body_sha256: _Optional[bytes] = ..., url: _Optional[str] = ..., key_set: _Optional[str] = ..., region: _Optional[str] = ..., clock_tolerance_seconds: _Optional[int] = ...) -> None: ...

class VerifySignatureResponse(_message.Message):
    __slots__ = ("valid", "reason", "key_slot", "message", "claims")
    VALID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KEY_SLOT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    reason: SignatureReason
    key_slot: KeySlot
    message: str
    claims: SignatureClaims
    def __init__(self, valid: _Optional[bool] = ..., reason: _Optional[_Union[SignatureReason, str]] = ..., key_slot: _Optional[_Union[KeySlot, str]] = ..., message: _Optional[str] = ..., claims: _Optional[_Union[SignatureClaims, _Mapping]] = ...) -> None: ...

class SignatureClaims(_message.Message):
    __slots__ = ("issuer", "subject", "expires_at", "not_before", "issued_at", "jwt_id", "body_hash")
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    JWT_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_HASH_FIELD_NUMBER: _ClassVar[int]
    issuer: str
    subject: str
    expires_at: int
    not_before: int
    issued_at: int
    jwt_id: str
    body_hash: str
    def __init__(self, issuer: _Optional[str] = ..., subject: _Optional[str] = ..., expires_at: _Optional[int] = ..., not_before: _Optional[int] = ..., issued_at: _Optional[int] = ..., jwt_id: _Optional[str] = ..., body_hash: _Optional[str] = ...) -> None: ...

class AuthorizeBearerRequest(_message.Message):
    __slots__ = ("authorization", "policy")
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    authorization: str
    policy: str
    def __init__(self, authorization: _Optional[str] = ..., policy: _Optional[str] = ...) -> None: ...

class AuthorizeBearerResponse(_message.Message):
    __slots__ = ("allowed", "reason", "message", "subject", "issuer", "scopes", "expires_at", "claims", "credential_kind")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ISSUER_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_KIND_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: BearerReason
    message: str
    subject: str
    issuer: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    expires_at: int
    claims: _struct_pb2.Struct
    credential_kind: CredentialKind
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[_Union[BearerReason, str]] = ..., message: _Optional[str] = ..., subject: _Optional[str] = ..., issuer: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., expires_at: _Optional[int] = ..., claims: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., credential_kind: _Optional[_Union[CredentialKind, str]] = ...) -> None: ...

class HttpHeader(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("method", "url", "headers", "body", "body_sha256", "policy", "key_set")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_SHA256_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    method: str
    url: str
    headers: _containers.RepeatedCompositeFieldContainer[HttpHeader]
    body: bytes
    body_sha256: bytes
    policy: str
    key_set: str
    def __init__(self, method: _Optional[str] = ..., url: _Optional[str] = ..., headers: _Optional[_Iterable[_Union[HttpHeader, _Mapping]]] = ..., body: _Optional[bytes] = ..., body_sha256: _Optional[bytes] = ..., policy: _Optional[str] = ..., key_set: _Optional[str] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("allowed", "reason", "message", "failure_callback", "signature", "bearer", "subject")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_CALLBACK_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    BEARER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: AuthorizeReason
    message: str
    failure_callback: bool
    signature: VerifySignatureResponse
    bearer: AuthorizeBearerResponse
    subject: str
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[_Union[AuthorizeReason, str]] = ..., message: _Optional[str] = ..., failure_callback: _Optional[bool] = ..., signature: _Optional[_Union[VerifySignatureResponse, _Mapping]] = ..., bearer: _Optional[_Union[AuthorizeBearerResponse, _Mapping]] = ..., subject: _Optional[str] = ...) -> None: ...

class GetKeyStatusRequest(_message.Message):
    __slots__ = ("key_set",)
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    key_set: str
    def __init__(self, key_set: _Optional[str] = ...) -> None: ...

class GetKeyStatusResponse(_message.Message):
    __slots__ = ("key_sets",)
    KEY_SETS_FIELD_NUMBER: _ClassVar[int]
    key_sets: _containers.RepeatedCompositeFieldContainer[KeySetStatus]
    def __init__(self, key_sets: _Optional[_Iterable[_Union[KeySetStatus, _Mapping]]] = ...) -> None: ...

class KeySetStatus(_message.Message):
    __slots__ = ("key_set", "region", "source", "current_fingerprint", "next_fingerprint", "loaded_at_unix", "version", "last_refresh_error", "staleness_seconds")
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    NEXT_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_UNIX_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_ERROR_FIELD_NUMBER: _ClassVar[int]
    STALENESS_SECONDS_FIELD_NUMBER: _ClassVar[int]
    key_set: str
    region: str
    source: str
    current_fingerprint: str
    next_fingerprint: str
    loaded_at_unix: int
    version: int
    last_refresh_error: str
    staleness_seconds: int
    def __init__(self, key_set: _Optional[str] = ..., region: _Optional[str] = ..., source: _Optional[str] = ..., current_fingerprint: _Optional[str] = ..., next_fingerprint: _Optional[str] = ..., loaded_at_unix: _Optional[int] = ..., version: _Optional[int] = ..., last_refresh_error: _Optional[str] = ..., staleness_seconds: _Optional[int] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ("key_set",)
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    key_set: str
    def __init__(self, key_set: _Optional[str] = ...) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("key_sets",)
    KEY_SETS_FIELD_NUMBER: _ClassVar[int]
    key_sets: _containers.RepeatedCompositeFieldContainer[KeySetStatus]
    def __init__(self, key_sets: _Optional[_Iterable[_Union[KeySetStatus, _Mapping]]] = ...) -> None: ...

class RotateSigningKeysRequest(_message.Message):
    __slots__ = ("key_set", "force")
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    key_set: str
    force: bool
    def __init__(self, key_set: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class RotateSigningKeysResponse(_message.Message):
    __slots__ = ("key_set",)
    KEY_SET_FIELD_NUMBER: _ClassVar[int]
    key_set: KeySetStatus
    def __init__(self, key_set: _Optional[_Union[KeySetStatus, _Mapping]] = ...) -> None: ...
