//! Every web API of the global scope, checked against exact expected values.

use serde_json::json;

use crate::harness::{Edge, client, get_json};

#[tokio::test]
async fn web_apis_give_exact_results() {
    let edge = Edge::dev("webapis");
    let res = client()
        .post(edge.url("/in/coming?q=1"))
        .header("x-probe", "probe")
        .header(
            "x-latin",
            reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        )
        .body("posted body")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-latin"].as_bytes(), b"caf\xe9");
    assert_eq!(res.headers()["x-two"], "a: b");
    let got: serde_json::Value = res.json().await.unwrap();
    let expected = json!({
        "url": "https://example.com/a/c?q=a%20b#f",
        "urlParts": ["https:", "user", "example.com", "8080", "/p/a/t/h", "?query=string", "#hash"],
        "searchParams": [["1", "3"], "a=1&b=2&a=3&c=x+y"],
        "urlPattern": "42",
        "textEncoder": [104, 195, 169, 108, 108, 111],
        "textDecoder": "€!",
        "base64": ["aGVsbG8=", "hello"],
        "eventTarget": ["ping:7"],
        "abort": [true, "why", true],
        "domException": ["NotFoundError", "gone", 8],
        "streams": "HELLO WORLD",
        "textStreams": "streamed text",
        "timers": ["microtask", "timeout-5", "timeout-20"],
        "interval": 3,
        "structuredClone": ["1970-01-01T00:00:00.000Z", [[1, "x"]], [2]],
        "blob": [4, "text/plain", "abcd", "bc", "f.txt"],
        "performance": true,
        "console": true,
        "randomValues": [32, true],
        "randomUUID": true,
        "digest": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "hmac": "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
        "headers": ["1, 2", true, ["content-type", "x-a"]],
        "request": ["POST", "https://e.com/p?x=1", "v", "hi"],
        "response": [201, "application/json", "{\"a\":1}"],
        "redirect": [302, "https://e.com/next"],
        "formData": ["1", "file body", "f.txt"],
        "compression": "hello hello hello hello",
        "incoming": [
            "POST", "/in/coming?q=1", "probe", "posted body", true,
            "POST", true, "probe",
            "PUT", true, "1", "posted body",
            false, "follow",
            0xe9,
        ],
        "globals": ["object", true, "string", "function"],
        "noInternals": ["undefined", "undefined", "undefined"],
    });
    // Compare key by key so a failure names the API.
    for (key, want) in expected.as_object().unwrap() {
        assert_eq!(&got[key], want, "web API check {key:?}");
    }
    assert_eq!(
        got.as_object().unwrap().len(),
        expected.as_object().unwrap().len(),
        "{got:#}"
    );
}

/// Workers' own globals, as Workers documents them.
#[tokio::test]
async fn workers_globals_behave_as_on_workers() {
    let edge = Edge::dev("workers-globals");
    let got = get_json(&client(), &edge.url("/"), None).await;
    assert_eq!(
        got,
        json!({
            "userAgent": "Cloudflare-Workers",
            "waited": [true, true],
            "aborted": "stop",
            "equal": true,
            "different": false,
            "views": true,
            "mismatch": ["TypeError", "Input buffers must have the same byte length."],
            "notBuffer": "TypeError",
            "streams": {
                "passed": [1, 2, 3, 4],
                "notBytes": "This TransformStream is being used as a byte stream, but received an object of non-ArrayBuffer/ArrayBufferView type on its writable side.",
                "tooMany": "Attempt to write too many bytes through a FixedLengthStream.",
                "tooFew": "FixedLengthStream did not see all expected bytes before close().",
                "badLength": "TypeError",
                "digests": {
                    "SHA-256": "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
                    "SHA-1": "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed",
                    "MD5": "5eb63bbbe01eeed093cb22bb8f5acdc3",
                },
                "unknown": "NotSupportedError",
                // A failed write settles the digest (no close or abort follows it).
                "failedWrite": ["TypeError", "TypeError"],
            },
        })
    );
    // The readable side of an identity stream is a byte stream: a BYOB reader gets the bytes
    // into its own views, and the writer's buffer is left as it was (answers of `wrangler dev`).
    let byob = get_json(&client(), &edge.url("/byob"), None).await;
    let want = json!([[1, 2], false, [3, 4, 5], false, true, 0, 5]);
    assert_eq!(byob, json!({ "identity": want, "fixed": want }));
    // A FixedLengthStream's readable side as a body sets Content-Length (not chunked).
    let res = client().get(edge.url("/fixed")).send().await.unwrap();
    assert_eq!(res.headers()["content-length"], "11");
    assert!(res.headers().get("transfer-encoding").is_none());
    assert_eq!(res.text().await.unwrap(), "hello world");
}

/// `request.cf`: the node's colo and fixed geo values, a trusted proxy's header over them (and
/// out of the app's headers), how the request arrived; copies keep it, as on Workers.
#[tokio::test]
async fn request_cf_tells_where_and_how_a_request_came() {
    let edge = Edge::dev_with(
        "request-cf",
        &[
            "--colo",
            "TST",
            "--cf",
            "country=DE",
            "--cf",
            "asn=64500",
            "--cf",
            "city=Berlin",
            "--cf-geo-header",
            "x-geo",
        ],
    );
    let res = client()
        .get(edge.url("/"))
        .header(
            "x-geo",
            r#"{"city":"Hamburg","latitude":"53.55","colo":"spoof"}"#,
        )
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    let got: serde_json::Value = res.json().await.unwrap();
    let cf = &got["cf"];
    assert_eq!(cf["colo"], "TST", "{got:#}");
    assert_eq!(cf["country"], "DE");
    assert_eq!(cf["asn"], 64500);
    assert_eq!(cf["city"], "Hamburg");
    assert_eq!(cf["latitude"], "53.55");
    assert_eq!(cf["httpProtocol"], "HTTP/1.1");
    assert_eq!(cf["clientAcceptEncoding"], "gzip, br");
    assert_eq!(cf["requestPriority"], "");
    assert!(
        cf["clientTcpRtt"].as_u64().is_some_and(|ms| ms < 1000),
        "{cf}"
    );
    assert_eq!(
        got["keys"],
        json!([
            "asn",
            "city",
            "clientAcceptEncoding",
            "clientTcpRtt",
            "colo",
            "country",
            "httpProtocol",
            "latitude",
            "requestPriority"
        ])
    );
    assert_eq!(got["copied"], true);
    assert_eq!(got["cloned"], true);
    assert_eq!(got["viaInit"], json!({ "cacheTtl": 60 }));
    assert_eq!(got["madeCopy"], json!({ "cacheTtl": 60 }));
    assert_eq!(got["plain"], "undefined");
    assert_eq!(got["geoHeader"], serde_json::Value::Null);
    assert_eq!(got["isRequest"], true);
    assert_eq!(got["subclass"], true);

    // A node that names no trusted header passes the header through and uses none of it.
    let plain = Edge::dev_with("request-cf", &["--cf", "country=DE"]);
    let got: serde_json::Value = client()
        .get(plain.url("/"))
        .header("x-geo", r#"{"country":"FR"}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["cf"]["country"], "DE");
    assert_eq!(got["cf"]["colo"], "EDGE");
    assert_eq!(got["geoHeader"], r#"{"country":"FR"}"#);
}
