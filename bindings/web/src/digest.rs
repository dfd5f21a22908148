//! The hashing behind Workers' `crypto.DigestStream`: a hash state per stream, fed chunk by
//! chunk as they are written, so a stream holds one state and never its data.

use std::borrow::Cow;
use std::cell::RefCell;

use deno_core::{OpState, Resource, ResourceId, op2};
use deno_error::JsErrorBox;
use sha1::Digest;

/// The most digest streams one isolate may have open at once (each holds a hash state outside
/// the JavaScript heap).
const MAX_OPEN: usize = 1_000;

/// A hash in progress.
enum Hasher {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn new(algorithm: &str) -> Option<Self> {
        Some(match algorithm.to_ascii_uppercase().as_str() {
            "MD5" => Self::Md5(md5::Md5::new()),
            "SHA-1" => Self::Sha1(sha1::Sha1::new()),
            "SHA-256" => Self::Sha256(sha2::Sha256::new()),
            "SHA-384" => Self::Sha384(sha2::Sha384::new()),
            "SHA-512" => Self::Sha512(sha2::Sha512::new()),
            _ => return None,
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Md5(h) => h.update(data),
            Self::Sha1(h) => h.update(data),
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Self::Md5(h) => h.finalize().to_vec(),
            Self::Sha1(h) => h.finalize().to_vec(),
            Self::Sha256(h) => h.finalize().to_vec(),
            Self::Sha384(h) => h.finalize().to_vec(),
            Self::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

struct DigestResource(RefCell<Option<Hasher>>);

impl Resource for DigestResource {
    fn name(&self) -> Cow<'_, str> {
        "edgeDigest".into()
    }
}

/// How many digest streams the isolate has open.
#[derive(Default)]
struct OpenDigests(usize);

/// Starts a hash of `algorithm` (`MD5`, `SHA-1`, `SHA-256`, `SHA-384`, `SHA-512`).
#[op2(fast)]
#[smi]
pub fn op_edge_digest_new(
    state: &mut OpState,
    #[string] algorithm: &str,
) -> Result<ResourceId, JsErrorBox> {
    // The script checks the name first (a NotSupportedError DOMException); this is the backstop.
    let hasher = Hasher::new(algorithm)
        .ok_or_else(|| JsErrorBox::type_error(format!("Unrecognized name: {algorithm:?}")))?;
    let open = state.try_borrow_mut::<OpenDigests>().map_or(0, |o| o.0);
    if open >= MAX_OPEN {
        return Err(JsErrorBox::type_error(format!(
            "too many DigestStreams open at once (at most {MAX_OPEN}): close or abort some"
        )));
    }
    if !state.has::<OpenDigests>() {
        state.put(OpenDigests::default());
    }
    state.borrow_mut::<OpenDigests>().0 += 1;
    Ok(state
        .resource_table
        .add(DigestResource(RefCell::new(Some(hasher)))))
}

/// Feeds `data` to hash `rid`.
#[op2(fast)]
pub fn op_edge_digest_update(
    state: &mut OpState,
    #[smi] rid: ResourceId,
    #[buffer] data: &[u8],
) -> Result<(), JsErrorBox> {
    let resource = state
        .resource_table
        .get::<DigestResource>(rid)
        .map_err(|_| JsErrorBox::type_error("the DigestStream is closed"))?;
    match resource.0.borrow_mut().as_mut() {
        Some(hasher) => {
            hasher.update(data);
            Ok(())
        }
        None => Err(JsErrorBox::type_error("the DigestStream is closed")),
    }
}

/// Ends hash `rid` and gives its digest.
#[op2]
#[buffer]
pub fn op_edge_digest_finish(
    state: &mut OpState,
    #[smi] rid: ResourceId,
) -> Result<Vec<u8>, JsErrorBox> {
    let resource = state
        .resource_table
        .take::<DigestResource>(rid)
        .map_err(|_| JsErrorBox::type_error("the DigestStream is closed"))?;
    if let Some(open) = state.try_borrow_mut::<OpenDigests>() {
        open.0 = open.0.saturating_sub(1);
    }
    let hasher = resource.0.borrow_mut().take();
    hasher
        .map(Hasher::finish)
        .ok_or_else(|| JsErrorBox::type_error("the DigestStream is closed"))
}
