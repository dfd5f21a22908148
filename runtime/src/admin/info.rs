//! `admin.json`: how a CLI finds a running node's admin endpoint.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The file, in the data directory next to `kv.redb`.
pub const ADMIN_FILE: &str = "admin.json";

/// The admin endpoint of a running node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdminInfo {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The bearer token every request must carry.
    pub token: String,
    /// The node's process id.
    pub pid: u32,
}

impl AdminInfo {
    /// Reads `path`.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Writes `path` readable by the owner only, atomically.
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(serde_json::to_string(self)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }
}

/// 32 random bytes, hex.
pub(crate) fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
