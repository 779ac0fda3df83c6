"""Regenerates the shipped gRPC stubs in src/signet_client/_pb/ from the
package's copy of the proto (with the pinned grpcio-tools of
requirements-dev.txt).

    python scripts/gen_stubs.py           # regenerate in place
    python scripts/gen_stubs.py --check   # fail if the proto copy or the stubs are stale
"""

import filecmp
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent.parent
SRC = HERE / "src"
PB = SRC / "signet_client" / "_pb"
CONTRACT = HERE.parent.parent / "proto" / "signet" / "v1" / "signet.proto"
GENERATED = ["signet_pb2.py", "signet_pb2.pyi", "signet_pb2_grpc.py"]


def generate(out: pathlib.Path) -> None:
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{SRC}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(PB / "signet.proto"),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")


def main() -> None:
    check = "--check" in sys.argv
    if not filecmp.cmp(CONTRACT, PB / "signet.proto", shallow=False):
        if check:
            sys.exit(f"{PB / 'signet.proto'} differs from {CONTRACT}: run scripts/gen_stubs.py")
        shutil.copyfile(CONTRACT, PB / "signet.proto")
    with tempfile.TemporaryDirectory() as tmp:
        generate(pathlib.Path(tmp))
        for name in GENERATED:
            fresh = pathlib.Path(tmp) / "signet_client" / "_pb" / name
            if check:
                if not filecmp.cmp(fresh, PB / name, shallow=False):
                    sys.exit(f"{PB / name} is stale: run scripts/gen_stubs.py")
            else:
                shutil.copyfile(fresh, PB / name)
    print("stubs " + ("up to date" if check else "generated") + " in " + str(PB))


if __name__ == "__main__":
    main()
