//! The app's KV namespaces (`[[kv_namespaces]]` in `edge.toml`), by binding name, through
//! `wasi:keyvalue`. A JavaScript app binding the same namespace id sees the same data.

use crate::__private::imports::wasi::keyvalue::{atomics, batch, store};

/// Why a KV call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The app binds no namespace by that name.
    NoSuchBinding,
    /// The host refused (a rule: key or value size, the namespace's quota, too many writes
    /// waiting), with its message.
    Refused(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoSuchBinding => f.write_str("this app binds no KV namespace by that name"),
            Self::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

impl From<store::Error> for Error {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NoSuchStore => Self::NoSuchBinding,
            store::Error::AccessDenied => Self::Refused("access denied".into()),
            store::Error::Other(why) => Self::Refused(why),
        }
    }
}

/// A key and its value.
pub type KeyValue = (String, Vec<u8>);

/// One of the app's KV namespaces.
pub struct Kv {
    bucket: store::Bucket,
}

impl Kv {
    /// The namespace bound as `binding` (e.g. `"COUNTS"` for
    /// `[[kv_namespaces]] binding = "COUNTS"`).
    pub fn open(binding: &str) -> Result<Self, Error> {
        Ok(Self {
            bucket: store::open(binding)?,
        })
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.bucket.get(key)?)
    }

    /// The value under `key`, as text (lossy).
    pub fn get_text(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self
            .get(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stores `value` under `key`; returns once durable.
    pub fn put(&self, key: &str, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.bucket.set(key, value.as_ref())?)
    }

    /// Removes `key`.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        Ok(self.bucket.delete(key)?)
    }

    /// Whether `key` has a value.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.bucket.exists(key)?)
    }

    /// Adds `delta` to the decimal number under `key` (absent is 0) and returns the sum.
    /// Increments of one namespace on a node never lose a count.
    pub fn increment(&self, key: &str, delta: u64) -> Result<u64, Error> {
        Ok(atomics::increment(&self.bucket, key, delta)?)
    }

    /// The values of `keys` that have one, in order: `(key, value)` or `None`.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<KeyValue>>, Error> {
        Ok(batch::get_many(&self.bucket, keys)?)
    }

    /// Every key, in byte order (one page of up to 1000 at a time from the host).
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.bucket.list_keys(cursor)?;
            all.extend(page.keys);
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }
}
