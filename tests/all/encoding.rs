//! A handler that sets `Content-Encoding` gets its body compressed to match (gzip, deflate,
//! br), whole or streamed, as on Workers; `encodeBody: "manual"` sends an encoded body as it is.

use std::io::Read;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use crate::harness::{Edge, client};

/// The plain body the fixture compresses.
fn text() -> String {
    (0..2000)
        .map(|i| format!("line {i} of a compressible body\n"))
        .collect()
}

fn decode(coding: &str, data: &[u8]) -> String {
    let mut out = String::new();
    match coding {
        "gzip" => flate2::read::GzDecoder::new(data).read_to_string(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(data).read_to_string(&mut out),
        "br" => brotli::Decompressor::new(data, 4096).read_to_string(&mut out),
        other => panic!("no decoder for {other}"),
    }
    .unwrap_or_else(|e| panic!("{coding}: {e}"));
    out
}

async fn get(edge: &Edge, path: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let res = client().get(edge.url(path)).send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    let headers = res.headers().clone();
    (headers, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn bodies_are_encoded_as_their_content_encoding_says() {
    let edge = Edge::dev("encoding");
    let text = text();
    for coding in ["gzip", "deflate", "br"] {
        for path in ["/text", "/bytes", "/stream"] {
            let (headers, body) = get(&edge, &format!("{path}?coding={coding}")).await;
            assert_eq!(headers["content-encoding"], coding, "{path}");
            let expected: String = if path == "/stream" {
                (0..4).map(|i| format!("chunk {i}\n{text}")).collect()
            } else {
                text.clone()
            };
            assert!(
                body.len() < expected.len() / 4,
                "{path} {coding}: {} bytes: not compressed",
                body.len()
            );
            assert_eq!(decode(coding, &body), expected, "{path} {coding}");
            if path == "/text" {
                // The handler's length was the plain body's: gone, not a lie.
                assert_ne!(
                    headers.get("content-length").map(|v| v.to_str().unwrap()),
                    Some(text.len().to_string().as_str())
                );
            }
        }
        let (_, body) = get(&edge, &format!("/json?coding={coding}")).await;
        let value: serde_json::Value = serde_json::from_str(&decode(coding, &body)).unwrap();
        assert_eq!(value, json!({ "text": text }));
    }
}

#[tokio::test]
async fn a_streamed_body_is_encoded_chunk_by_chunk() {
    let edge = Edge::dev("encoding");
    let res = client()
        .get(edge.url("/stream?coding=gzip"))
        .send()
        .await
        .unwrap();
    let mut body = res.bytes_stream();
    // The first chunk decodes on its own, before the handler has made the next one: each
    // chunk is flushed, the response stays a stream.
    let started = Instant::now();
    let first = body.next().await.unwrap().unwrap();
    let mut decoder = flate2::read::GzDecoder::new(&first[..]);
    let mut plain = vec![0u8; 8];
    decoder.read_exact(&mut plain).unwrap();
    assert_eq!(&plain, b"chunk 0\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    while body.next().await.transpose().unwrap().is_some() {}
}

#[tokio::test]
async fn manual_bodies_others_and_empty_ones_are_sent_as_they_are() {
    let edge = Edge::dev("encoding");
    let text = text();
    for path in ["/manual", "/manual-clone", "/manual-stream"] {
        let (headers, body) = get(&edge, path).await;
        assert_eq!(headers["content-encoding"], "gzip", "{path}");
        // Encoded once: by the handler, not again by edge.
        assert_eq!(decode("gzip", &body), text, "{path}");
    }
    let (headers, body) = get(&edge, "/identity").await;
    assert_eq!(headers["content-encoding"], "zstd");
    assert_eq!(String::from_utf8(body).unwrap(), text);

    let res = client().get(edge.url("/no-content")).send().await.unwrap();
    assert_eq!(res.status(), 204);
    assert!(res.bytes().await.unwrap().is_empty());

    let (_, body) = get(&edge, "/bad-mode").await;
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "TypeError: Failed to construct 'Response': encodeBody must be \"automatic\" or \"manual\", not \"sometimes\""
    );
    let (_, body) = get(&edge, "/shape").await;
    let shape: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        shape,
        json!({
            "instance": true, "constructor": true, "json": true, "subclass": true,
            "name": "Response", "statics": true,
        })
    );
}
