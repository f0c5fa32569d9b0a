#![no_main]
//! Arbitrary bytes as the request body of every Missive RPC (enumerated from the descriptor
//! set; the first byte picks the method), sent with a valid admin key to a real server on
//! SQLite: through decoding, validation and the store. Whatever arrives, the answer is
//! never INTERNAL or UNKNOWN, and the server keeps answering.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run requests -s none -- -max_total_time=60`.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use missive::{
    api::pb,
    config::Config,
    domain::users::{NewUser, Role},
    server::Application,
    store,
};
use prost_reflect::DescriptorPool;
use tonic::{Code, Request, transport::Channel};

// The API tests' codec, one file for both.
#[path = "../../tests/api/raw_codec.rs"]
mod raw_codec;

use raw_codec::RawCodec;

/// The server every input goes to, started once.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    key: String,
    /// Every RPC: its path, and whether it streams.
    methods: Vec<(String, bool)>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("fuzz.db").display());
        let (channel, key) = runtime.block_on(async {
            let mut config = Config::for_database(url);
            // The fuzzer calls as fast as it can: no rate may refuse it.
            config.limits.calls_per_second = u32::MAX / 2;
            config.limits.call_burst = u32::MAX / 2;
            config.limits.stream_opens_per_second = u32::MAX / 2;
            config.limits.stream_open_burst = u32::MAX / 2;
            let app = Application::build(config).await.unwrap();
            let (addr, store) = (app.local_addr(), app.store());
            tokio::spawn(app.run_until(std::future::pending()));
            let account = store::seed::create_account(&store, "fuzz").await.unwrap();
            let new = NewUser::parse(Some(Role::Admin), "fuzz".into(), String::new(), String::new(), String::new());
            let admin = store::seed::create_user(&store, &account, new.unwrap()).await.unwrap();
            let key = store::seed::create_key(&store, &account, &admin.id, "fuzz").await.unwrap().secret;
            let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
            (channel, key)
        });
        let pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
        let methods = pool
            .services()
            .filter(|service| service.package_name() == "missive.v1")
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| (format!("/{}/{}", service.full_name(), method.name()), method.is_server_streaming()))
                    .collect::<Vec<_>>()
            })
            .collect();
        Fixture { runtime, channel, key, methods, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Some((&selector, body)) = data.split_first() else { return };
    let (path, streaming) = &fixture.methods[usize::from(selector) % fixture.methods.len()];
    let code = fixture.runtime.block_on(call(fixture, path, *streaming, body.to_vec()));
    assert!(!matches!(code, Code::Internal | Code::Unknown), "{path} answered {code:?} to {body:?}");
});

async fn call(fixture: &Fixture, path: &str, streaming: bool, body: Vec<u8>) -> Code {
    let mut grpc = tonic::client::Grpc::new(fixture.channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(body);
    request.metadata_mut().insert("authorization", format!("Bearer {}", fixture.key).parse().unwrap());
    let path = path.parse().unwrap();
    if !streaming {
        return grpc.unary(request, path, RawCodec).await.map_or_else(|status| status.code(), |_| Code::Ok);
    }
    match grpc.server_streaming(request, path, RawCodec).await {
        // A stream that opened: its first item (a heartbeat) shows it works.
        Ok(response) => match response.into_inner().message().await {
            Err(status) => status.code(),
            Ok(_) => Code::Ok,
        },
        Err(status) => status.code(),
    }
}
