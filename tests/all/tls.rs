//! HTTPS on `edge serve`: certificates generated here (rcgen), two hostnames told apart by
//! SNI, HTTP/2 by ALPN (and HTTP/1.1 for clients that ask for it), and a renewed certificate
//! served without a restart; a real TLS client (reqwest on rustls) that trusts only the one
//! certificate it should see.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::{Edge, scratch};

fn write_app(apps: &Path, name: &str, host: &str) {
    let dir = apps.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("edge.toml"),
        format!("name = \"{name}\"\nmain = \"index.js\"\nroutes = [\"{host}/*\"]\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("index.js"),
        format!(
            // `request.cf` tells how the request arrived (its TLS version and cipher family).
            "export default {{ fetch(req) {{ const cf = req.cf; return new Response({name:?} + ' over ' + new URL(req.url).protocol + ' ' + cf.httpProtocol + ' ' + (cf.tlsVersion ?? 'no') + ' ' + (cf.tlsCipher ?? 'tls').split('-')[0]); }} }};\n"
        ),
    )
    .unwrap();
}

/// A self-signed certificate for `names`, written as certbot lays it out; returns its PEM.
fn write_cert(certs: &Path, folder: &str, names: &[&str]) -> String {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let key = rcgen::generate_simple_self_signed(names).unwrap();
    let dir = certs.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let pem = key.cert.pem();
    // Written to temporary names and renamed, as a renewal tool does.
    std::fs::write(dir.join("privkey.pem.new"), key.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("fullchain.pem.new"), &pem).unwrap();
    std::fs::rename(dir.join("privkey.pem.new"), dir.join("privkey.pem")).unwrap();
    std::fs::rename(dir.join("fullchain.pem.new"), dir.join("fullchain.pem")).unwrap();
    pem
}

/// A client that trusts only `pem` and sends `host` to the node's HTTPS address.
fn client_trusting(pem: &str, host: &str, https: SocketAddr, http1: bool) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .resolve(host, https)
        .timeout(Duration::from_secs(30))
        .no_proxy();
    if http1 {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_picks_the_certificate_by_sni_speaks_h2_and_takes_a_renewal() {
    let apps = scratch("tls-apps");
    let certs = scratch("tls-certs");
    write_app(&apps, "alpha", "alpha.test");
    write_app(&apps, "beta", "beta.test");
    let alpha_pem = write_cert(&certs, "alpha.test", &["alpha.test"]);
    let beta_pem = write_cert(&certs, "beta.test", &["beta.test", "*.beta.test"]);
    let edge = Edge::serve(
        &apps,
        &[
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-certs",
            certs.to_str().unwrap(),
        ],
    );
    let https: SocketAddr = edge
        .https
        .as_deref()
        .expect("an https line")
        .parse()
        .unwrap();
    let url = |host: &str| format!("https://{host}:{}/", https.port());

    // Each host gets its own certificate (a client trusting only it verifies the handshake),
    // over HTTP/2.
    for (host, pem, body) in [
        (
            "alpha.test",
            &alpha_pem,
            "alpha over https: HTTP/2 TLSv1.3 AEAD",
        ),
        (
            "beta.test",
            &beta_pem,
            "beta over https: HTTP/2 TLSv1.3 AEAD",
        ),
    ] {
        let c = client_trusting(pem, host, https, false);
        let res = c.get(url(host)).send().await.unwrap();
        assert_eq!(res.version(), reqwest::Version::HTTP_2, "{host}");
        assert_eq!(res.status(), 200, "{host}");
        assert_eq!(res.text().await.unwrap(), body, "{host}");
    }
    // The wrong certificate for the name: the client refuses it.
    let c = client_trusting(&alpha_pem, "beta.test", https, false);
    assert!(
        c.get(url("beta.test")).send().await.is_err(),
        "beta.test was served alpha's certificate"
    );
    // A wildcard name of beta's certificate: TLS works (and no app is routed for it).
    let c = client_trusting(&beta_pem, "www.beta.test", https, false);
    let res = c.get(url("www.beta.test")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    // HTTP/1.1 for a client that offers only that.
    let c = client_trusting(&alpha_pem, "alpha.test", https, true);
    let res = c.get(url("alpha.test")).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        res.text().await.unwrap(),
        "alpha over https: HTTP/1.1 TLSv1.3 AEAD"
    );
    // Plain HTTP keeps working beside it.
    let res = crate::harness::client()
        .get(edge.url("/"))
        .header("host", "alpha.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text().await.unwrap(),
        "alpha over http: HTTP/1.1 no tls"
    );

    // Renewed: the new certificate is served without a restart.
    let renewed = write_cert(&certs, "alpha.test", &["alpha.test"]);
    let c = client_trusting(&renewed, "alpha.test", https, false);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c.get(url("alpha.test")).send().await {
            Ok(res) => {
                assert_eq!(
                    res.text().await.unwrap(),
                    "alpha over https: HTTP/2 TLSv1.3 AEAD"
                );
                break;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the renewed certificate was not served: {e}\n{}",
                    edge.logs()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // A renewal half written (a key that is not PEM): the certificate before keeps serving.
    std::fs::write(certs.join("alpha.test/privkey.pem"), "not a key").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let res = c.get(url("alpha.test")).send().await.unwrap();
    assert_eq!(
        res.text().await.unwrap(),
        "alpha over https: HTTP/2 TLSv1.3 AEAD"
    );
    assert!(
        edge.logs().contains("TLS certificate not reloaded"),
        "{}",
        edge.logs()
    );
}
