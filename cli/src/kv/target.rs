//! Where `edge kv` reads and writes: the redb file itself when no node has it open, or the
//! running node's admin endpoint when one does.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use edge_kv::admin::list_json;
use edge_kv::{KvBackend, ListOptions, Namespace, PutOptions, RedbBackend, RedbOptions};
use edge_runtime::admin::{ADMIN_FILE, AdminInfo};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// `put`'s options as the command line gives them.
pub(super) struct PutArgs {
    pub(super) ttl: Option<u64>,
    pub(super) expiration: Option<u64>,
    pub(super) metadata: Option<String>,
}

pub(super) enum Target {
    Local(Namespace),
    Remote {
        client: reqwest::Client,
        info: AdminInfo,
        ns: String,
    },
}

impl Target {
    /// Opens the namespace in `dir`. `create` allows making a new store (for `put`).
    pub(super) async fn open(dir: &Path, ns: &str, create: bool) -> anyhow::Result<Self> {
        let file = RedbBackend::file_in(dir);
        if !create && !file.exists() {
            bail!(
                "no KV data in {} (expected {}); pass the node's --data-dir, or for `edge dev` the app's .edge folder",
                dir.display(),
                file.display()
            );
        }
        match RedbBackend::open(&file, RedbOptions::default()) {
            Ok(store) => {
                let store: Arc<dyn KvBackend> = Arc::new(store);
                Ok(Target::Local(Namespace::new(store, ns)))
            }
            Err(edge_kv::OpenError::InUse { .. }) => Self::remote(dir, ns).await,
            Err(e) => Err(e.into()),
        }
    }

    async fn remote(dir: &Path, ns: &str) -> anyhow::Result<Self> {
        let admin_file = dir.join(ADMIN_FILE);
        let info = AdminInfo::read(&admin_file).with_context(|| {
            format!(
                "{} is open in another process, and {} (the running node's admin endpoint) cannot be read; stop that process, or run this command as the user running the node",
                RedbBackend::file_in(dir).display(),
                admin_file.display()
            )
        })?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("cannot create an HTTP client")?;
        Ok(Target::Remote {
            client,
            info,
            ns: ns.to_string(),
        })
    }

    fn url(info: &AdminInfo, ns: &str, tail: &str) -> String {
        format!(
            "{}/v1/kv/{}/{tail}",
            info.url,
            utf8_percent_encode(ns, NON_ALPHANUMERIC)
        )
    }

    fn value_url(info: &AdminInfo, ns: &str, key: &str) -> String {
        Self::url(
            info,
            ns,
            &format!("values/{}", utf8_percent_encode(key, NON_ALPHANUMERIC)),
        )
    }

    async fn send(
        info: &AdminInfo,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let res = req.bearer_auth(&info.token).send().await.with_context(|| {
            format!(
                "the node (pid {}) holding this data does not answer at {}",
                info.pid, info.url
            )
        })?;
        Ok(res)
    }

    async fn check(res: reqwest::Response) -> anyhow::Result<reqwest::Response> {
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        match body.get("error").and_then(|e| e.as_str()) {
            Some(message) => bail!("{message}"),
            None => bail!("the node answered {status}"),
        }
    }

    /// Every key (following cursors) as JSON objects.
    pub(super) async fn list_all(
        &self,
        prefix: Option<String>,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut keys = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (page, next) = match self {
                Target::Local(ns) => {
                    let page = ns
                        .list(ListOptions {
                            prefix: prefix.clone(),
                            limit: None,
                            cursor: cursor.clone(),
                        })
                        .await?;
                    page_parts(list_json(page))
                }
                Target::Remote { client, info, ns } => {
                    let mut query = Vec::new();
                    if let Some(p) = &prefix {
                        query.push(("prefix", p.clone()));
                    }
                    if let Some(c) = &cursor {
                        query.push(("cursor", c.clone()));
                    }
                    let req = client.get(Self::url(info, ns, "keys")).query(&query);
                    let body: serde_json::Value = Self::check(Self::send(info, req).await?)
                        .await?
                        .json()
                        .await?;
                    page_parts(body)
                }
            };
            keys.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(keys),
            }
        }
    }

    pub(super) async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Target::Local(ns) => Ok(ns.get(key).await?.map(|e| e.value)),
            Target::Remote { client, info, ns } => {
                let res = Self::send(info, client.get(Self::value_url(info, ns, key))).await?;
                if res.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                Ok(Some(Self::check(res).await?.bytes().await?.to_vec()))
            }
        }
    }

    pub(super) async fn put(&self, key: &str, value: Vec<u8>, args: PutArgs) -> anyhow::Result<()> {
        match self {
            Target::Local(ns) => {
                let options = PutOptions {
                    expiration: args.expiration.map(|e| e as f64),
                    expiration_ttl: args.ttl.map(|t| t as f64),
                    metadata: args.metadata,
                };
                Ok(ns.put(key, value, options).await?)
            }
            Target::Remote { client, info, ns } => {
                let mut query = Vec::new();
                if let Some(t) = args.ttl {
                    query.push(("expiration_ttl", t.to_string()));
                }
                if let Some(e) = args.expiration {
                    query.push(("expiration", e.to_string()));
                }
                if let Some(m) = args.metadata {
                    query.push(("metadata", m));
                }
                let req = client
                    .put(Self::value_url(info, ns, key))
                    .query(&query)
                    .body(value);
                Self::check(Self::send(info, req).await?).await?;
                Ok(())
            }
        }
    }

    pub(super) async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self {
            Target::Local(ns) => Ok(ns.delete(key).await?),
            Target::Remote { client, info, ns } => {
                let req = client.delete(Self::value_url(info, ns, key));
                Self::check(Self::send(info, req).await?).await?;
                Ok(())
            }
        }
    }
}

/// The keys and the next cursor of a `list` page in its JSON form (the same from the file and
/// from the admin endpoint).
fn page_parts(page: serde_json::Value) -> (Vec<serde_json::Value>, Option<String>) {
    let keys = page["keys"].as_array().cloned().unwrap_or_default();
    let next = page
        .get("cursor")
        .and_then(|c| c.as_str())
        .map(String::from);
    (keys, next)
}
