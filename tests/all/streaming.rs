//! Bodies stream both ways with bounded memory.

use futures::StreamExt;
use serde_json::Value;

use crate::harness::{Edge, client, peak_rss_kib, rss_kib};

const GIB: u64 = 1 << 30;

/// The checksum the stream fixture computes: every 4096th byte of a stream whose byte i is
/// `i % 251`, summed mod 1e9+7, chunk by chunk.
fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

#[tokio::test]
async fn a_1_gib_download_streams_with_bounded_memory() {
    let edge = Edge::dev("stream");
    let res = client()
        .get(edge.url(&format!("/download?bytes={GIB}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        // Spot-check the content: every byte is where the pattern says.
        for (j, b) in chunk.iter().enumerate().step_by(997) {
            assert_eq!(
                *b,
                pattern_byte(total + j as u64),
                "byte {}",
                total + j as u64
            );
        }
        total += chunk.len() as u64;
    }
    assert_eq!(total, GIB);
    let peak = peak_rss_kib(edge.pid());
    assert!(
        peak < 512 * 1024,
        "peak RSS {peak} KiB for a 1 GiB download"
    );
}

#[tokio::test]
async fn a_1_gib_upload_streams_with_bounded_memory() {
    // Past the default request body limit (100 MiB): the operator raises it.
    let dir = crate::harness::fixture("stream");
    let edge = Edge::start(&[
        "dev",
        dir.to_str().unwrap(),
        "--port",
        "0",
        "--max-body-mb",
        "2048",
    ]);
    const CHUNK: usize = 256 * 1024;
    let chunks = (GIB as usize) / CHUNK;
    let body = futures::stream::iter(0..chunks)
        .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; CHUNK])));
    let res = client()
        .post(edge.url("/upload"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["length"], GIB);
    let peak = peak_rss_kib(edge.pid());
    assert!(peak < 512 * 1024, "peak RSS {peak} KiB for a 1 GiB upload");
}

#[tokio::test]
async fn echo_streams_the_request_body_back() {
    let edge = Edge::dev("stream");
    let payload: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let res = client()
        .post(edge.url("/echo"))
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let back = res.bytes().await.unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload);
    assert!(rss_kib(edge.pid()) > 0);
}
