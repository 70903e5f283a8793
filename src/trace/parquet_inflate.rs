//! Zstandard column chunks decompressed in one step each, ahead of decoding.
//!
//! polars' page reader decompresses a zstd page through a streaming decoder with a context of
//! its own per column chunk: a context made for every column of every slice, a window buffer
//! allocated with it, and the page copied out of that window. The batch reader instead keeps
//! one context per thread and decompresses each page of a chunk in one call straight into a
//! copy of the chunk whose pages are stored uncompressed (the same page headers, sizes set to
//! the uncompressed ones, no checksum), which the page reader then takes without copying.
//!
//! Only what is certainly understood is rewritten: dictionary pages and version 1 data pages
//! of a zstd chunk, each of which decompresses to exactly the size its header gives. Anything
//! else (another codec, a version 2 data page, an index page, a header or frame that does not
//! read) leaves the chunk to polars' own reader, so that a damaged file fails there exactly
//! as it did.

use std::io::Cursor;

use polars_parquet::parquet::compression::Compression;
use polars_parquet_format::thrift::protocol::{TCompactInputProtocol, TCompactOutputProtocol};
use polars_parquet_format::{PageHeader, PageType};
use zstd::zstd_safe::DCtx;

/// A thread's decompression context, made on first use.
#[derive(Default)]
pub(super) struct Inflater {
    dctx: Option<DCtx<'static>>,
}

impl Inflater {
    /// The column chunk `chunk` (compressed with `compression`) with every page decompressed,
    /// or `None` when it is left to polars' reader (see the module docs). `size` is what the
    /// footer says the chunk takes uncompressed, headers included: the copy is made that large
    /// at once (and grown should the rewritten headers need a few bytes more).
    pub(super) fn inflate(
        &mut self,
        chunk: &[u8],
        compression: Compression,
        size: usize,
    ) -> Option<Vec<u8>> {
        if compression != Compression::Zstd {
            return None;
        }
        let dctx = self.dctx.get_or_insert_with(DCtx::create);
        // A footer's size is a hint, never trusted beyond a sane multiple of the chunk.
        let mut out = Vec::with_capacity(size.min(chunk.len().saturating_mul(64)) + 256);
        let mut pos = 0;
        while pos < chunk.len() {
            let mut reader = Cursor::new(chunk.get(pos..)?);
            let left = chunk.len() - pos;
            let mut header = PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(
                &mut reader,
                left,
            ))
            .ok()?;
            let header_len = usize::try_from(reader.position()).ok()?;
            if header.type_ != PageType::DATA_PAGE && header.type_ != PageType::DICTIONARY_PAGE {
                return None;
            }
            let compressed = usize::try_from(header.compressed_page_size).ok()?;
            let size = usize::try_from(header.uncompressed_page_size).ok()?;
            let start = pos.checked_add(header_len)?;
            let payload = chunk.get(start..start.checked_add(compressed)?)?;
            header.compressed_page_size = header.uncompressed_page_size;
            header.crc = None;
            header
                .write_to_out_protocol(&mut TCompactOutputProtocol::new(&mut out))
                .ok()?;
            out.reserve(size);
            let before = out.len();
            let mut sink = Cursor::new(&mut out);
            sink.set_position(before as u64);
            let written = dctx.decompress(&mut sink, payload).ok()?;
            if written != size || out.len() != before + size {
                return None;
            }
            pos = start + compressed;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use polars::prelude::*;

    use super::*;

    fn written(compression: ParquetCompression, rows: usize) -> Vec<u8> {
        let mut df = DataFrame::new(
            rows,
            vec![
                Column::new(
                    "ts".into(),
                    (0..rows as i64).map(|i| i * 1_000).collect::<Vec<_>>(),
                ),
                Column::new(
                    "tool".into(),
                    (0..rows)
                        .map(|i| format!("tool-{}", i % 7))
                        .collect::<Vec<_>>(),
                ),
            ],
        )
        .expect("frame");
        let mut out = Vec::new();
        ParquetWriter::new(&mut out)
            .with_compression(compression)
            .with_row_group_size(Some(rows / 2))
            .with_data_page_size(Some(4096))
            .finish(&mut df)
            .expect("written");
        out
    }

    /// Every chunk of the file, with its compression.
    fn chunks(data: &[u8]) -> Vec<(Vec<u8>, Compression)> {
        let md = ParquetReader::new(Cursor::new(data.to_vec()))
            .get_metadata()
            .expect("footer")
            .clone();
        let mut out = Vec::new();
        for rg in &md.row_groups {
            for c in rg.parquet_columns() {
                let r = c.byte_range();
                out.push((
                    data[r.start as usize..r.end as usize].to_vec(),
                    c.compression(),
                ));
            }
        }
        out
    }

    #[test]
    fn zstd_chunks_are_inflated_page_by_page() {
        let data = written(ParquetCompression::Zstd(None), 20_000);
        let mut inflater = Inflater::default();
        let all = chunks(&data);
        assert!(all.len() >= 4, "two columns in two row groups");
        for (chunk, compression) in all {
            let out = inflater.inflate(&chunk, compression, 0).expect("inflated");
            // Walk the rewritten chunk: every page stored as it decompresses.
            let mut pos = 0;
            let mut pages = 0;
            while pos < out.len() {
                let mut r = Cursor::new(&out[pos..]);
                let h = PageHeader::read_from_in_protocol(&mut TCompactInputProtocol::new(
                    &mut r,
                    out.len(),
                ))
                .expect("header");
                assert_eq!(h.compressed_page_size, h.uncompressed_page_size);
                assert_eq!(h.crc, None);
                pos += r.position() as usize + h.uncompressed_page_size as usize;
                pages += 1;
            }
            assert_eq!(pos, out.len());
            assert!(pages >= 2, "small pages: several per chunk");
        }
    }

    #[test]
    fn other_codecs_and_damage_are_left_to_polars() {
        let mut inflater = Inflater::default();
        for (chunk, compression) in chunks(&written(ParquetCompression::Snappy, 2_000)) {
            assert_eq!(inflater.inflate(&chunk, compression, 0), None);
        }
        let zstd = chunks(&written(ParquetCompression::Zstd(None), 2_000));
        let (chunk, compression) = &zstd[0];
        // Cut short, or garbage after the last page.
        assert_eq!(
            inflater.inflate(&chunk[..chunk.len() - 3], *compression, 0),
            None
        );
        let mut longer = chunk.clone();
        longer.extend_from_slice(&[0xff; 7]);
        assert_eq!(inflater.inflate(&longer, *compression, 0), None);
        // The context survives a failure.
        assert!(inflater.inflate(chunk, *compression, 1 << 20).is_some());
    }
}
