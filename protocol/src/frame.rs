//! The worker wire format: a frame is a JSON header plus an optional binary payload.
//!
//! `u32 LE header length, header JSON, u32 LE payload length, payload bytes`. Audio travels as the
//! payload so that a 45-minute visit is 86 MB of PCM, not half a gigabyte of JSON numbers.

use std::io::{self, Read, Write};

use serde::{Serialize, de::DeserializeOwned};

const MAX_HEADER: u32 = 64 << 20;
const MAX_PAYLOAD: u32 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the pipe at a frame boundary: for a worker, it exited.
    #[error("the other side closed the connection")]
    Closed,
    #[error("frame i/o failed: {0}")]
    Io(#[from] io::Error),
    #[error("frame header is not valid: {0}")]
    Header(#[from] serde_json::Error),
    #[error("frame part of {0} bytes is over the limit")]
    TooLarge(u32),
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, header: &T, payload: &[u8]) -> Result<(), FrameError> {
    let header = serde_json::to_vec(header)?;
    let payload_len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge(u32::MAX))?;
    w.write_all(&(header.len() as u32).to_le_bytes())?;
    w.write_all(&header)?;
    w.write_all(&payload_len.to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()?;
    Ok(())
}

pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<(T, Vec<u8>), FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let header = read_part(r, u32::from_le_bytes(len), MAX_HEADER)?;
    r.read_exact(&mut len).map_err(eof_is_closed)?;
    let payload = read_part(r, u32::from_le_bytes(len), MAX_PAYLOAD)?;
    Ok((serde_json::from_slice(&header)?, payload))
}

fn read_part(r: &mut impl Read, len: u32, max: u32) -> Result<Vec<u8>, FrameError> {
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).map_err(eof_is_closed)?;
    Ok(buf)
}

fn eof_is_closed(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FrameError::Closed
    } else {
        FrameError::Io(e)
    }
}

/// 16-bit PCM samples as the little-endian bytes of a frame payload.
pub fn pcm_to_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

pub fn pcm_from_bytes(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Request;

    #[test]
    fn frames_round_trip_and_eof_is_closed() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Transcribe, &pcm_to_bytes(&[1, -2, 300])).unwrap();
        let mut r = &buf[..];
        let (req, payload): (Request, _) = read_frame(&mut r).unwrap();
        assert_eq!(req, Request::Transcribe);
        assert_eq!(pcm_from_bytes(&payload), vec![1, -2, 300]);
        assert!(matches!(read_frame::<Request>(&mut r), Err(FrameError::Closed)));
    }

    #[test]
    fn a_truncated_frame_is_closed_not_garbage() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Transcribe, &[0; 64]).unwrap();
        buf.truncate(buf.len() - 10);
        assert!(matches!(read_frame::<Request>(&mut &buf[..]), Err(FrameError::Closed)));
    }
}
