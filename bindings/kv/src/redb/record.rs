//! How an entry is laid out in the redb file: a flags byte, then the optional expiration and
//! metadata, then the value bytes, so `list` can read expiration and metadata without copying
//! the value.

use crate::backend::Entry;

const HAS_EXPIRATION: u8 = 1;
const HAS_METADATA: u8 = 2;

/// Serializes an entry.
pub(crate) fn encode(entry: &Entry) -> Vec<u8> {
    let meta = entry.metadata.as_deref().map(str::as_bytes);
    let mut out = Vec::with_capacity(1 + 8 + 4 + meta.map_or(0, <[u8]>::len) + entry.value.len());
    let mut flags = 0;
    if entry.expiration.is_some() {
        flags |= HAS_EXPIRATION;
    }
    if meta.is_some() {
        flags |= HAS_METADATA;
    }
    out.push(flags);
    if let Some(at) = entry.expiration {
        out.extend_from_slice(&at.to_le_bytes());
    }
    if let Some(meta) = meta {
        out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        out.extend_from_slice(meta);
    }
    out.extend_from_slice(&entry.value);
    out
}

/// The parts of a stored entry, borrowed from the record.
pub(crate) struct Parts<'a> {
    pub(crate) expiration: Option<u64>,
    pub(crate) metadata: Option<&'a [u8]>,
    pub(crate) value: &'a [u8],
}

impl Parts<'_> {
    pub(crate) fn metadata_string(&self) -> Option<String> {
        self.metadata
            .map(|m| String::from_utf8_lossy(m).into_owned())
    }

    pub(crate) fn to_entry(&self) -> Entry {
        Entry {
            value: self.value.to_vec(),
            metadata: self.metadata_string(),
            expiration: self.expiration,
        }
    }
}

/// Splits a record; `None` if it is not one this version wrote.
pub(crate) fn decode(bytes: &[u8]) -> Option<Parts<'_>> {
    let (&flags, mut rest) = bytes.split_first()?;
    let mut expiration = None;
    if flags & HAS_EXPIRATION != 0 {
        let (at, tail) = rest.split_first_chunk::<8>()?;
        expiration = Some(u64::from_le_bytes(*at));
        rest = tail;
    }
    let mut metadata = None;
    if flags & HAS_METADATA != 0 {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if tail.len() < len {
            return None;
        }
        let (meta, tail) = tail.split_at(len);
        metadata = Some(meta);
        rest = tail;
    }
    Some(Parts {
        expiration,
        metadata,
        value: rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for entry in [
            Entry::default(),
            Entry {
                value: b"v".to_vec(),
                metadata: Some("{\"a\":1}".into()),
                expiration: Some(1234),
            },
            Entry {
                value: vec![0; 100],
                metadata: None,
                expiration: Some(u64::MAX),
            },
            Entry {
                value: vec![],
                metadata: Some(String::new()),
                expiration: None,
            },
        ] {
            let bytes = encode(&entry);
            assert_eq!(decode(&bytes).unwrap().to_entry(), entry);
        }
        assert!(decode(&[]).is_none());
        assert!(decode(&[HAS_METADATA, 9, 0, 0, 0]).is_none());
    }
}
