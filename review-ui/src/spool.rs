//! An upload on its way to the decoder, kept on disk rather than in memory (an upload may be
//! hundreds of megabytes, and several may arrive at once), and encrypted, because the recording is
//! PHI and the spool is not the database. Each upload gets a fresh key that lives only in this
//! process's memory, and the file has no name (`tempfile::tempfile_in`, unlinked from the start), so
//! neither a crash nor a finished upload leaves anything readable on disk.
//!
//! The file is a run of sealed blocks (ChaCha20-Poly1305, the block's number as its nonce), so the
//! decoder can seek anywhere and read back only the block it needs; a block changed on disk fails
//! to open instead of decoding as something else.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Plaintext bytes per sealed block.
const BLOCK: usize = 64 * 1024;
/// What sealing adds to each block.
const TAG: usize = 16;

/// Block `index`'s nonce: each block of a key is sealed once, under its own number.
fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// An upload being written.
pub struct Spool {
    file: File,
    key: LessSafeKey,
    block: Vec<u8>,
    sealed: u64,
    len: u64,
}

impl Spool {
    /// A spool in `dir` (the appliance's own disk, not a tmpfs that would hold it in memory).
    pub fn new(dir: &std::path::Path) -> io::Result<Spool> {
        let mut key = [0u8; 32];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| io::Error::other("the system random source failed"))?;
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a 32-byte key");
        Ok(Spool {
            file: tempfile::tempfile_in(dir)?,
            key: LessSafeKey::new(key),
            block: Vec::with_capacity(BLOCK),
            sealed: 0,
            len: 0,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let take = (BLOCK - self.block.len()).min(bytes.len());
            self.block.extend_from_slice(&bytes[..take]);
            self.len += take as u64;
            bytes = &bytes[take..];
            if self.block.len() == BLOCK {
                self.seal_block()?;
            }
        }
        Ok(())
    }

    fn seal_block(&mut self) -> io::Result<()> {
        let mut block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        self.key
            .seal_in_place_append_tag(nonce(self.sealed), Aad::empty(), &mut block)
            .map_err(|_| io::Error::other("sealing a block of the upload failed"))?;
        self.file.write_all(&block)?;
        self.sealed += 1;
        Ok(())
    }

    /// Everything written, to read back from the start.
    pub fn into_reader(mut self) -> io::Result<SpoolReader> {
        if !self.block.is_empty() {
            self.seal_block()?;
        }
        Ok(SpoolReader {
            file: self.file,
            key: self.key,
            len: self.len,
            pos: 0,
            loaded: None,
            plain: Vec::with_capacity(BLOCK + TAG),
        })
    }
}

/// A finished spool, read (and seeked) as the upload's plain bytes.
pub struct SpoolReader {
    file: File,
    key: LessSafeKey,
    len: u64,
    pos: u64,
    /// Which block `plain` holds.
    loaded: Option<u64>,
    plain: Vec<u8>,
}

impl SpoolReader {
    fn load(&mut self, index: u64) -> io::Result<()> {
        let start = index * BLOCK as u64;
        let plain_len = (self.len - start).min(BLOCK as u64) as usize;
        self.plain.resize(plain_len + TAG, 0);
        self.file.seek(SeekFrom::Start(index * (BLOCK + TAG) as u64))?;
        self.file.read_exact(&mut self.plain)?;
        self.loaded = None;
        let opened = self
            .key
            .open_in_place(nonce(index), Aad::empty(), &mut self.plain)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the spooled upload was changed on disk"))?
            .len();
        self.plain.truncate(opened);
        self.loaded = Some(index);
        Ok(())
    }
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let index = self.pos / BLOCK as u64;
        if self.loaded != Some(index) {
            self.load(index)?;
        }
        let offset = (self.pos % BLOCK as u64) as usize;
        let n = buf.len().min(self.plain.len() - offset);
        buf[..n].copy_from_slice(&self.plain[offset..offset + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SpoolReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

impl audio::MediaSource for SpoolReader {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn reads_back_what_was_written_from_anywhere() {
        let data = pattern(3 * BLOCK + 1234);
        let mut spool = Spool::new(&std::env::temp_dir()).unwrap();
        // Written in uneven pieces, as an upload's chunks arrive.
        for piece in data.chunks(10_007) {
            spool.write(piece).unwrap();
        }
        assert_eq!(spool.len(), data.len() as u64);
        let mut reader = spool.into_reader().unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert!(all == data);
        for at in [
            0u64,
            1,
            BLOCK as u64 - 3,
            BLOCK as u64,
            2 * BLOCK as u64 + 17,
            data.len() as u64 - 5,
        ] {
            reader.seek(SeekFrom::Start(at)).unwrap();
            let mut some = [0u8; 100];
            let n = reader.read(&mut some).unwrap();
            assert!(n > 0);
            assert_eq!(&some[..n], &data[at as usize..at as usize + n], "at {at}");
        }
        reader.seek(SeekFrom::End(-2)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[data.len() - 2..]);
        assert!(reader.seek(SeekFrom::Current(-(data.len() as i64) - 1)).is_err());
    }

    /// The attack: reading the spool off the disk. What is there is ciphertext, and a changed
    /// block is refused rather than decoded.
    #[test]
    fn the_disk_holds_no_plaintext_and_a_changed_block_is_refused() {
        let words = b"Patient Jane Doe, date of birth 1970-01-01. ".repeat(3000);
        let mut spool = Spool::new(&std::env::temp_dir()).unwrap();
        spool.write(&words).unwrap();
        let mut reader = spool.into_reader().unwrap();
        let mut on_disk = Vec::new();
        reader.file.seek(SeekFrom::Start(0)).unwrap();
        reader.file.read_to_end(&mut on_disk).unwrap();
        assert!(!on_disk.windows(8).any(|w| w == b"Jane Doe"), "plaintext on disk");

        reader.file.seek(SeekFrom::Start(10)).unwrap();
        reader.file.write_all(&[on_disk[10] ^ 1]).unwrap();
        reader.loaded = None;
        reader.seek(SeekFrom::Start(0)).unwrap();
        let err = reader.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
