"""signet's hand-written subset of Envoy's protos (`proto/envoy`,
`proto/google/rpc`) agrees with Envoy's real definitions (PyPI
envoy-data-plane) on every message, field and enum value it has: name,
number, type, cardinality, oneof and referenced type.

The subset is read from the running server by reflection (v1alpha), so this
checks the descriptors signet actually serves."""

import importlib

import pytest
from betterproto2 import TYPE_ENUM, TYPE_MAP, TYPE_MESSAGE
from envoy_data_plane.message_pool import default_message_pool
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "envoy.service.auth.v3.Authorization"
SUBSET_PACKAGES = ("envoy.", "google.rpc")

SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_UINT64: "uint64",
}


def real_class(full_name: str, package: str):
    """The envoy-data-plane class of a proto message or enum: module per
    package, nested names joined (`AttributeContext.HttpRequest` →
    `AttributeContextHttpRequest`)."""
    module = importlib.import_module("envoy_data_plane." + package)
    return getattr(module, full_name[len(package) + 1:].replace(".", ""))


def is_repeated(field) -> bool:
    if hasattr(field, "is_repeated"):
        return field.is_repeated
    return field.label == FieldDescriptor.LABEL_REPEATED


def type_name(cls) -> str:
    return default_message_pool.type_to_url[cls].removeprefix("type.googleapis.com/")


def kind(field) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return TYPE_MAP if field.message_type.GetOptions().map_entry else TYPE_MESSAGE
    if field.type == FieldDescriptor.TYPE_ENUM:
        return TYPE_ENUM
    return SCALARS[field.type]


@pytest.fixture(scope="module")
def subset(dev_server):
    """Every message and enum of the subset files the server describes."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(dev_server.channel))
    files, todo = {}, [pool.FindFileContainingSymbol(SERVICE)]
    while todo:
        f = todo.pop()
        if f.name not in files and f.package.startswith(SUBSET_PACKAGES):
            files[f.name] = f
            todo.extend(f.dependencies)
    messages, enums = [], []

    def walk(message):
        messages.append(message)
        enums.extend(message.enum_types)
        for nested in message.nested_types:
            if not nested.GetOptions().map_entry:
                walk(nested)

    for f in files.values():
        for message in f.message_types_by_name.values():
            walk(message)
        enums.extend(f.enum_types_by_name.values())
    return messages, enums


def test_the_subset_has_what_signet_reads_and_writes(subset):
    messages, _ = subset
    names = {m.full_name for m in messages}
    for name in [
        "envoy.service.auth.v3.CheckRequest",
        "envoy.service.auth.v3.AttributeContext.HttpRequest",
        "envoy.service.auth.v3.CheckResponse",
        "envoy.service.auth.v3.OkHttpResponse",
        "envoy.service.auth.v3.DeniedHttpResponse",
        "envoy.config.core.v3.HeaderValueOption",
        "envoy.config.core.v3.HeaderValue",
        "envoy.config.core.v3.HeaderMap",
        "envoy.type.v3.HttpStatus",
        "google.rpc.Status",
    ]:
        assert name in names


def test_every_subset_field_matches_envoys(subset):
    messages, _ = subset
    checked = 0
    for message in messages:
        cls = real_class(message.full_name, message.file.package)
        assert type_name(cls) == message.full_name
        meta = cls._betterproto.meta_by_field_name
        for field in message.fields:
            where = f"{message.full_name}.{field.name}"
            assert field.name in meta, f"{where}: not in Envoy's definition"
            real = meta[field.name]
            assert real.number == field.number, where
            assert real.proto_type == kind(field), where
            if kind(field) == TYPE_MAP:
                entry = field.message_type.fields_by_name
                assert [m.proto_type for m in real.map_meta] == [kind(entry["key"]), kind(entry["value"])], where
            else:
                assert bool(real.repeated) == is_repeated(field), where
            oneof = field.containing_oneof
            assert real.group == (oneof.name if oneof else None), where
            referenced = cls._betterproto.cls_by_field.get(field.name)
            if kind(field) == TYPE_MESSAGE:
                assert type_name(referenced) == field.message_type.full_name, where
            if kind(field) == TYPE_ENUM:
                enum = field.enum_type
                assert referenced is real_class(enum.full_name, enum.file.package), where
            checked += 1
    assert checked >= 20


def test_every_subset_enum_value_matches_envoys(subset):
    _, enums = subset
    assert {e.full_name for e in enums} == {
        "envoy.type.v3.StatusCode",
        "envoy.config.core.v3.HeaderValueOption.HeaderAppendAction",
    }
    for enum in enums:
        real = real_class(enum.full_name, enum.file.package)
        for value in enum.values:
            assert real[value.name].value == value.number, f"{enum.full_name}.{value.name}"
