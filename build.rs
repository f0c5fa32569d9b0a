//! Compiles the protos in `proto/` with protox (pure Rust, so no system `protoc` is needed)
//! and writes the encoded file descriptor sets that server reflection serves: Missive's,
//! and Google's `error_details.proto` (vendored in `third_party/googleapis`), so that
//! reflection clients such as grpcurl decode the details every error carries; and tells
//! the crate the compiler's version, for the build-info metric.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/missive/v1/resources.proto",
    "proto/missive/v1/admin.proto",
    "proto/missive/v1/conversations.proto",
    "proto/missive/v1/messages.proto",
    "proto/missive/v1/templates.proto",
    "proto/missive/v1/scheduled.proto",
    "proto/missive/v1/reports.proto",
    "proto/missive/v1/relays.proto",
    "proto/missive/v1/notifications.proto",
    "proto/missive/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=third_party");
    // For the build-info metric. Cargo rebuilds everything, this script included, when the
    // compiler changes.
    println!("cargo:rustc-env=MISSIVE_RUSTC_VERSION={}", rustc_version());
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

/// The compiler's version ("1.91.1"), or "unknown" when it does not say.
fn rustc_version() -> String {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = std::process::Command::new(rustc).arg("--version").output();
    // "rustc 1.91.1 (ed61e7d7e 2025-11-07)"
    let said = output.map(|output| String::from_utf8_lossy(&output.stdout).into_owned()).unwrap_or_default();
    said.split_whitespace().nth(1).unwrap_or("unknown").to_owned()
}
