//! Per-tenant counters, read through the runtime's API (what the metrics work will read).

use std::path::Path;
use std::time::Duration;

use edge_runtime::isolate::{Event, FetchRequest};
use edge_runtime::limits::LimitKind;
use edge_runtime::tenant::Tenant;
use edge_runtime::{ErrorCode, Node, NodeOptions};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

fn options() -> NodeOptions {
    NodeOptions {
        idle_timeout: Duration::ZERO,
        cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("edge-cache")),
        ..NodeOptions::default()
    }
}

async fn call(tenant: &Tenant, n: u64) -> edge_runtime::isolate::Reply {
    tenant
        .dispatch(
            edge_runtime::RequestId::new(0x7e57, n),
            Event::Fetch(FetchRequest {
                cf: None,
                upgrade: None,
                method: http::Method::GET,
                url: "http://app.test/".into(),
                headers: Default::default(),
                body: edge_runtime::isolate::InvocationBody::Empty,
            }),
        )
        .await
}

async fn wait_idle(tenant: &Tenant) {
    for _ in 0..200 {
        if !tenant.is_running() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the isolate did not retire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_track_invocations_cpu_heap_and_terminations() {
    let node = Node::single(&fixture("hostile/good"), options()).unwrap();
    let good = &node.tenants()[0];
    for n in 0..3 {
        let res = call(good, n).await.unwrap();
        assert_eq!(res.status(), 200);
    }
    wait_idle(good).await;
    let stats = good.stats();
    assert_eq!(stats.invocations, 3);
    assert!(stats.cpu > Duration::ZERO, "{stats:?}");
    assert!(stats.peak_heap_bytes > 100_000, "{stats:?}");
    assert_eq!(stats.terminations, [0; 4]);

    let node = Node::single(&fixture("hostile/spin"), options()).unwrap();
    let spin = &node.tenants()[0];
    let err = call(spin, 9).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CpuLimit);
    wait_idle(spin).await;
    let stats = spin.stats();
    assert_eq!(stats.invocations, 1);
    assert_eq!(stats.terminations_for(LimitKind::Cpu), 1);
    assert_eq!(stats.terminations_for(LimitKind::Memory), 0);
    assert!(stats.cpu >= Duration::from_millis(50), "{stats:?}");
}
