//! Compiles the protos in `proto/` with protox (pure Rust, so no system `protoc` is needed)
//! and writes the encoded file descriptor sets that server reflection serves: Missive's,
//! and Google's `error_details.proto` (vendored in `third_party/googleapis`), so that
//! reflection clients such as grpcurl decode the details every error carries.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/missive/v1/resources.proto",
    "proto/missive/v1/admin.proto",
    "proto/missive/v1/conversations.proto",
    "proto/missive/v1/messages.proto",
    "proto/missive/v1/templates.proto",
    "proto/missive/v1/scheduled.proto",
    "proto/missive/v1/reports.proto",
    "proto/missive/v1/notifications.proto",
    "proto/missive/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=third_party");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("missive_descriptor.bin"), prost::Message::encode_to_vec(&descriptors))?;
    let error_details = protox::compile(["google/rpc/error_details.proto"], ["third_party/googleapis"])?;
    std::fs::write(out_dir.join("error_details_descriptor.bin"), prost::Message::encode_to_vec(&error_details))?;
    // Every service uses `api::codec`, tonic's prost codec with a smaller per-call buffer.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::api::codec::SmallBufferCodec")
        // Ordered maps encode alike every time, so a request's fingerprint is stable.
        .btree_map(".")
        .compile_fds(descriptors)?;
    Ok(())
}
