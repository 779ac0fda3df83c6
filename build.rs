//! Compiles `proto/` with protox (pure Rust), so a fresh machine needs no `protoc`.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // signet's own contract and the wire subset of Envoy's ext_authz v3.
    let fds = protox::compile(
        [
            "signet/v1/signet.proto",
            "envoy/service/auth/v3/external_auth.proto",
        ],
        ["proto"],
    )?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    // Reflection serves this descriptor set.
    fs::write(out.join("signet_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Bodies stay `Bytes`: decoded without a copy out of the HTTP/2 frame.
        .bytes(".signet.v1")
        // Undecodable requests are INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::server::codec::StrictCodec")
        .bytes(".envoy.service.auth.v3.AttributeContext.HttpRequest")
        .compile_fds(fds)?;
    Ok(())
}
