//! TLS on the front door (rustls): a certificate per hostname, chosen by the client's SNI
//! against each certificate's own names (read once when it loads; a wildcard covers one
//! label); ALPN `h2` and `http/1.1`;
//! certificates read again when their files change, an unreadable one (half written by a
//! renewal) leaving the version before it in use.
//!
//! The certificates directory has one folder per certificate, as certbot's `live/` has:
//! `fullchain.pem` (or `cert.pem`) with the chain, leaf first, and `privkey.pem` (or
//! `key.pem`). A client that sends no SNI gets the first certificate in folder order.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::Watcher as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

use super::{Conn, RequestIds, bounds::Admission};
use crate::node::Node;
use crate::worker::{ConnectionCf, TlsInfo, boringssl_cipher_name};

/// Why the certificates could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The directory could not be read.
    #[error("cannot read the certificates directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate folder holds no usable certificate and key.
    #[error("{path}: {reason}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No folder holds a certificate.
    #[error("no certificate in {0} (expected folders with fullchain.pem and privkey.pem)")]
    Empty(PathBuf),
    /// The TLS settings could not be made.
    #[error("TLS settings: {0}")]
    Config(#[from] rustls::Error),
}

/// One certificate with its key, from one folder.
#[derive(Debug)]
struct Entry {
    folder: PathBuf,
    key: Arc<CertifiedKey>,
    /// The DNS names the certificate is valid for (`example.com`, `*.example.com`),
    /// lowercase, read once when it loads.
    names: Vec<String>,
}

impl Entry {
    /// Whether the certificate covers `sni` (lowercase): one of its names is `sni`, or is
    /// `*.` and what follows `sni`'s first label.
    fn covers(&self, sni: &str) -> bool {
        let wildcard = sni.split_once('.').map(|(_, parent)| format!("*.{parent}"));
        self.names
            .iter()
            .any(|n| n == sni || wildcard.as_deref() == Some(n.as_str()))
    }
}

/// The certificates a TLS listener serves, reloadable.
#[derive(Debug)]
pub struct TlsCerts {
    dir: PathBuf,
    entries: ArcSwap<Vec<Entry>>,
    provider: Arc<CryptoProvider>,
}

impl TlsCerts {
    /// Reads every certificate folder of `dir`; fails if one is unusable or there are none.
    pub fn load(dir: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (entries, mut errors) = read_dir(dir, &provider)?;
        if let Some(e) = errors.drain(..).next() {
            return Err(e);
        }
        if entries.is_empty() {
            return Err(TlsError::Empty(dir.to_path_buf()));
        }
        Ok(Arc::new(Self {
            dir: dir.to_path_buf(),
            entries: ArcSwap::from_pointee(entries),
            provider,
        }))
    }

    /// Reads the certificates again. A folder that no longer reads keeps the certificate it
    /// had (its error is returned, to log); a folder that is gone stops being served.
    pub fn reload(&self) -> Vec<TlsError> {
        let (mut entries, errors) = match read_dir(&self.dir, &self.provider) {
            Ok(read) => read,
            Err(e) => return vec![e],
        };
        let old = self.entries.load();
        for e in &errors {
            if let TlsError::Folder { path, .. } = e
                && let Some(kept) = old.iter().find(|o| &o.folder == path)
            {
                entries.push(Entry {
                    folder: kept.folder.clone(),
                    key: kept.key.clone(),
                    names: kept.names.clone(),
                });
            }
        }
        entries.sort_by(|a, b| a.folder.cmp(&b.folder));
        self.entries.store(Arc::new(entries));
        errors
    }

    /// How many certificates are served.
    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    /// Whether none is (never, after a successful [`TlsCerts::load`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rustls acceptor: these certificates by SNI, ALPN `h2` then `http/1.1`.
    pub fn acceptor(self: &Arc<Self>) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BySni(self.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }

    /// Reloads the certificates when files in their directory change (renewals); stops
    /// when the returned watcher is dropped. Must be called inside a tokio runtime.
    pub fn watch(self: &Arc<Self>) -> notify::Result<notify::RecommendedWatcher> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| e.kind.is_access()) {
                    return;
                }
                let _ = tx.send(());
            })?;
        watcher.watch(&self.dir, notify::RecursiveMode::Recursive)?;
        let certs = Arc::downgrade(self);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                // Let a renewal finish writing both files, then read them once.
                tokio::time::sleep(RELOAD_QUIET).await;
                while rx.try_recv().is_ok() {}
                let Some(certs) = certs.upgrade() else { return };
                let errors = certs.reload();
                for e in &errors {
                    tracing::error!(
                        "TLS certificate not reloaded; the one before keeps serving: {e}"
                    );
                }
                tracing::info!(certificates = certs.len(), "TLS certificates reloaded");
            }
        });
        Ok(watcher)
    }
}

/// How long certificate files must be quiet before they are read again.
const RELOAD_QUIET: Duration = Duration::from_millis(200);

/// Every certificate folder of `dir` that reads, in folder order, and the errors of those
/// that do not.
fn read_dir(
    dir: &Path,
    provider: &CryptoProvider,
) -> Result<(Vec<Entry>, Vec<TlsError>), TlsError> {
    let read = std::fs::read_dir(dir).map_err(|source| TlsError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut folders: Vec<PathBuf> = read
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    folders.sort();
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for folder in folders {
        match read_folder(&folder, provider) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(reason) => errors.push(TlsError::Folder {
                path: folder,
                reason,
            }),
        }
    }
    Ok((entries, errors))
}

/// The certificate of one folder, with the names it is valid for; `None` if the folder holds
/// no certificate files at all.
fn read_folder(folder: &Path, provider: &CryptoProvider) -> Result<Option<Entry>, String> {
    let pick = |names: [&str; 2]| names.iter().map(|n| folder.join(n)).find(|p| p.exists());
    let (Some(cert_file), Some(key_file)) = (
        pick(["fullchain.pem", "cert.pem"]),
        pick(["privkey.pem", "key.pem"]),
    ) else {
        return Ok(None);
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate in it", cert_file.display()));
    }
    let names: Vec<String> = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| format!("{}: not a usable certificate: {e}", cert_file.display()))?
        .valid_dns_names()
        .map(str::to_ascii_lowercase)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        format!(
            "{}: does not go with {}: {e}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(Some(Entry {
        folder: folder.to_path_buf(),
        key: Arc::new(certified),
        names,
    }))
}

/// Chooses the certificate whose names cover the client's SNI.
#[derive(Debug)]
struct BySni(Arc<TlsCerts>);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let entries = self.0.entries.load();
        let Some(sni) = hello.server_name() else {
            return entries.first().map(|e| e.key.clone());
        };
        let sni = sni.to_ascii_lowercase();
        entries
            .iter()
            .find(|e| e.covers(&sni))
            .map(|e| e.key.clone())
    }
}

/// Serves `node` over TLS on `listener` until the process ends: HTTP/2 or HTTP/1.1 as ALPN
/// says, with the same routing, limits and bounds as the plain listener.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    acceptor: tokio_rustls::TlsAcceptor,
) -> std::io::Result<()> {
    let ids = Arc::new(RequestIds::new());
    let limits = node.front_door();
    let admission = Admission::new(&limits);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("TLS accept failed: {e}; backing off");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admitted = match admission.admit(peer.ip()) {
            Ok(admitted) => admitted,
            Err(why) => {
                // No plain-text answer on a TLS port: the connection is closed.
                tracing::debug!(%peer, "TLS connection refused: {why}");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let rtt_ms = super::tcp_rtt::rtt_ms(&stream);
        let (node, ids) = (node.clone(), ids.clone());
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let handshake =
                tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream));
            match handshake.await {
                Ok(Ok(tls)) => {
                    let cf = Arc::new(ConnectionCf {
                        node: node.options().cf.clone(),
                        tls: negotiated(tls.get_ref().1),
                        rtt_ms,
                    });
                    let conn = Conn {
                        node,
                        ids,
                        peer,
                        scheme: "https",
                        cf,
                        admitted: Arc::new(admitted),
                    };
                    super::serve_any(tls, conn).await
                }
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The TLS version and cipher of a finished handshake, spelled as Workers spells them.
fn negotiated(tls: &rustls::ServerConnection) -> Option<TlsInfo> {
    let version = match tls.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        _ => return None,
    };
    let suite = format!("{:?}", tls.negotiated_cipher_suite()?.suite());
    Some(TlsInfo {
        version,
        cipher: boringssl_cipher_name(&suite),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_covers_one_label() {
        let key = unused_key();
        let entry = Entry {
            folder: PathBuf::from("x"),
            key,
            names: vec!["example.com".into(), "*.example.com".into()],
        };
        assert!(entry.covers("example.com"));
        assert!(entry.covers("www.example.com"));
        assert!(!entry.covers("a.b.example.com"));
        assert!(!entry.covers("example.org"));
        assert!(!entry.covers("com"));
    }

    /// A key no handshake uses (the test only matches names).
    fn unused_key() -> Arc<CertifiedKey> {
        #[derive(Debug)]
        struct NoKey;
        impl rustls::sign::SigningKey for NoKey {
            fn choose_scheme(
                &self,
                _: &[rustls::SignatureScheme],
            ) -> Option<Box<dyn rustls::sign::Signer>> {
                None
            }
            fn algorithm(&self) -> rustls::SignatureAlgorithm {
                rustls::SignatureAlgorithm::ECDSA
            }
        }
        Arc::new(CertifiedKey::new(vec![], Arc::new(NoKey)))
    }
}
