//! Response bodies the runtime compresses for a script. As on Workers, a script that sets
//! `Content-Encoding: gzip` (or `deflate`, `br`) on its response hands over plain bytes and the
//! runtime encodes them to match, unless the script says the body is already encoded
//! (`encodeBody: "manual"`). Any other value (several codings, `zstd`, `identity`) is sent as
//! the script wrote it, with the body untouched.
//!
//! The work is done on the isolate's thread inside the script's turn, so the CPU it takes is
//! charged to the invocation like any other work it causes; a streamed body's encoder state is
//! charged to the isolate's memory while the stream is open ([`Coding::encoder_memory`]).

use std::io::Write;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

/// gzip and deflate compression level: zlib's default, a balance of ratio and speed.
const DEFLATE_LEVEL: u32 = 6;

/// Brotli quality for bodies compressed as they are sent: 4 of 11 is about as fast as gzip's
/// default level with a better ratio (the high qualities are for compressing ahead of time,
/// and from 5 up the encoder's tables grow past 3 MiB).
const BROTLI_QUALITY: u32 = 4;

/// Brotli window, as a power of two: 256 KiB, enough for responses and bounded in memory.
const BROTLI_WINDOW_BITS: u32 = 18;

/// A content coding the runtime applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    /// `gzip` (or its old alias `x-gzip`).
    Gzip,
    /// `deflate`: the zlib format, as HTTP defines it.
    Deflate,
    /// `br`: Brotli.
    Brotli,
}

impl Coding {
    /// The coding a response's headers name, if it is one coding the runtime applies. Case and
    /// surrounding spaces do not matter; several `Content-Encoding` headers or a list of codings
    /// are left alone.
    pub(crate) fn of(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(CONTENT_ENCODING).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let value = value.to_str().ok()?.trim();
        if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
            Some(Self::Gzip)
        } else if value.eq_ignore_ascii_case("deflate") {
            Some(Self::Deflate)
        } else if value.eq_ignore_ascii_case("br") {
            Some(Self::Brotli)
        } else {
            None
        }
    }

    /// What the encoder state of one streamed body is charged against its isolate's memory
    /// limit while the stream is open: an upper bound for the settings above, measured with
    /// 100 encoders fed 200 KB each (brotli 2.8 MiB, zlib 290 KiB).
    pub(crate) fn encoder_memory(self) -> usize {
        match self {
            Self::Gzip | Self::Deflate => 512 << 10,
            Self::Brotli => 3 << 20,
        }
    }
}

/// Encodes a body that arrives in pieces: each piece comes out flushed, so the client can
/// decode everything sent so far (a streamed response stays a stream).
pub(crate) struct Encoder(Inner);

enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
}

impl Encoder {
    /// A new encoder for `coding`.
    pub(crate) fn new(coding: Coding) -> Self {
        let level = flate2::Compression::new(DEFLATE_LEVEL);
        Self(match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(Vec::new(), level)),
            Coding::Deflate => Inner::Deflate(flate2::write::ZlibEncoder::new(Vec::new(), level)),
            Coding::Brotli => Inner::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                16 << 10,
                BROTLI_QUALITY,
                BROTLI_WINDOW_BITS,
            ))),
        })
    }

    /// Encodes `data` and flushes: the bytes to send now.
    pub(crate) fn chunk(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        let writer = self.writer();
        writer.write_all(data)?;
        writer.flush()?;
        Ok(std::mem::take(self.output()).into())
    }

    /// Ends the body: the bytes that close it.
    pub(crate) fn finish(self) -> std::io::Result<Bytes> {
        Ok(match self.0 {
            Inner::Gzip(e) => e.finish()?.into(),
            Inner::Deflate(e) => e.finish()?.into(),
            Inner::Brotli(e) => e.into_inner().into(),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match &mut self.0 {
            Inner::Gzip(e) => e,
            Inner::Deflate(e) => e,
            Inner::Brotli(e) => &mut **e,
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match &mut self.0 {
            Inner::Gzip(e) => e.get_mut(),
            Inner::Deflate(e) => e.get_mut(),
            Inner::Brotli(e) => e.get_mut(),
        }
    }
}

/// Encodes a whole body at once (one write, no flush in between: the best ratio).
pub(crate) fn encode(coding: Coding, data: &[u8]) -> std::io::Result<Bytes> {
    let mut encoder = Encoder::new(coding);
    encoder.writer().write_all(data)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn decode(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => flate2::read::GzDecoder::new(data).read_to_end(&mut out),
            Coding::Deflate => flate2::read::ZlibDecoder::new(data).read_to_end(&mut out),
            Coding::Brotli => brotli::Decompressor::new(data, 4096).read_to_end(&mut out),
        }
        .unwrap();
        out
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(CONTENT_ENCODING, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn names_one_coding_or_none() {
        assert_eq!(Coding::of(&headers(&["gzip"])), Some(Coding::Gzip));
        assert_eq!(Coding::of(&headers(&[" X-GZIP "])), Some(Coding::Gzip));
        assert_eq!(Coding::of(&headers(&["Deflate"])), Some(Coding::Deflate));
        assert_eq!(Coding::of(&headers(&["br"])), Some(Coding::Brotli));
        for other in [
            &["identity"][..],
            &["zstd"],
            &["gzip, br"],
            &["gzip", "br"],
            &[],
        ] {
            assert_eq!(Coding::of(&headers(other)), None, "{other:?}");
        }
    }

    #[test]
    fn whole_and_streamed_bodies_decode_to_what_was_sent() {
        let text: Vec<u8> = (0..50_000u32)
            .flat_map(|i| format!("line {i} of a body\n").into_bytes())
            .collect();
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Brotli] {
            let whole = encode(coding, &text).unwrap();
            assert!(whole.len() < text.len() / 4, "{coding:?}: {}", whole.len());
            assert_eq!(decode(coding, &whole), text, "{coding:?}");

            let mut encoder = Encoder::new(coding);
            let mut streamed = Vec::new();
            for piece in text.chunks(7_000) {
                let out = encoder.chunk(piece).unwrap();
                streamed.extend_from_slice(&out);
                // Flushed: what was sent so far decodes to a prefix of the body.
                assert!(!out.is_empty(), "{coding:?}");
            }
            streamed.extend_from_slice(&encoder.finish().unwrap());
            assert_eq!(decode(coding, &streamed), text, "{coding:?}");

            // An empty body is still a valid stream of the coding.
            assert_eq!(decode(coding, &encode(coding, b"").unwrap()), b"");
        }
    }
}
