//! A stereo PCM16 WAV written while a call runs (caller left, agent right). The header's sizes
//! are patched at every flush, so the file on disk is a valid WAV up to the last flush and a
//! crash loses at most one buffer.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::wav::WavError;

/// Bytes buffered before they go to the file.
const BUFFER: usize = 64 * 1024;
const HEADER: u64 = 44;

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    /// Stereo sample frames written.
    pub frames: u64,
    pub duration_ms: u64,
    pub bytes: u64,
}

pub struct StereoWavWriter {
    path: PathBuf,
    file: File,
    rate: u32,
    buf: Vec<u8>,
    frames: u64,
}

fn io_err(path: &Path, e: std::io::Error) -> WavError {
    WavError::Write { path: path.display().to_string(), source: hound::Error::IoError(e) }
}

fn header(rate: u32, data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let (channels, bits) = (2u16, 16u16);
    let block = channels * bits / 8;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes());
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&(rate * block as u32).to_le_bytes());
    h[32..34].copy_from_slice(&block.to_le_bytes());
    h[34..36].copy_from_slice(&bits.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

impl StereoWavWriter {
    /// Creates (or truncates) `path`; its directory must exist.
    pub fn create(path: &Path, rate: u32) -> Result<Self, WavError> {
        let mut file = File::create(path).map_err(|e| io_err(path, e))?;
        file.write_all(&header(rate, 0)).map_err(|e| io_err(path, e))?;
        Ok(StereoWavWriter { path: path.to_path_buf(), file, rate, buf: Vec::with_capacity(BUFFER), frames: 0 })
    }

    /// Appends `left.len()` frames; both channels must be the same length.
    pub fn write(&mut self, left: &[i16], right: &[i16]) -> Result<(), WavError> {
        if left.len() != right.len() {
            return Err(WavError::Unsupported { path: self.path.display().to_string(), what: format!("channels of {} and {} samples", left.len(), right.len()) });
        }
        // A WAV's data size is 32-bit: stop short of it (about 37 hours at 8 kHz).
        if (self.frames + left.len() as u64) * 4 > u32::MAX as u64 - HEADER {
            return Err(WavError::Unsupported { path: self.path.display().to_string(), what: "recording over 4 GB".into() });
        }
        for (l, r) in left.iter().zip(right) {
            self.buf.extend_from_slice(&l.to_le_bytes());
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.frames += left.len() as u64;
        if self.buf.len() >= BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> Result<(), WavError> {
        self.file.write_all(&self.buf).map_err(|e| io_err(&self.path, e))?;
        self.buf.clear();
        Ok(())
    }

    /// Writes what is buffered and makes the header match, so the file is valid as it stands.
    pub fn flush(&mut self) -> Result<(), WavError> {
        self.write_out()?;
        let data = (self.frames * 4) as u32;
        let p = self.path.clone();
        self.file.seek(SeekFrom::Start(0)).map_err(|e| io_err(&p, e))?;
        self.file.write_all(&header(self.rate, data)).map_err(|e| io_err(&p, e))?;
        self.file.seek(SeekFrom::End(0)).map_err(|e| io_err(&p, e))?;
        self.file.flush().map_err(|e| io_err(&p, e))
    }

    pub fn finish(mut self) -> Result<RecordingInfo, WavError> {
        self.flush()?;
        // the fsync can take seconds on a busy disk: do not hold the buffer through it
        self.buf = Vec::new();
        self.file.sync_data().map_err(|e| io_err(&self.path, e))?;
        Ok(RecordingInfo { path: self.path.clone(), frames: self.frames, duration_ms: self.frames * 1000 / self.rate as u64, bytes: HEADER + self.frames * 4 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("cf-wavstream-{}-{name}.wav", std::process::id()))
    }

    #[test]
    fn writes_in_pieces_and_reads_back_exactly() {
        let p = tmp("pieces");
        let mut w = StereoWavWriter::create(&p, 8000).unwrap();
        let left: Vec<i16> = (0..24000).map(|i| (i % 3000) as i16).collect();
        let right: Vec<i16> = (0..24000).map(|i| -((i % 2000) as i16)).collect();
        let mut at = 0;
        for n in [1, 159, 1000, 7, 22833] {
            w.write(&left[at..at + n], &right[at..at + n]).unwrap();
            at += n;
        }
        let info = w.finish().unwrap();
        assert_eq!((info.frames, info.duration_ms, info.bytes), (24000, 3000, 44 + 96000));
        let mut r = hound::WavReader::open(&p).unwrap();
        assert_eq!((r.spec().channels, r.spec().sample_rate, r.spec().bits_per_sample), (2, 8000, 16));
        let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(s.iter().step_by(2).copied().collect::<Vec<_>>(), left);
        assert_eq!(s.iter().skip(1).step_by(2).copied().collect::<Vec<_>>(), right);
        assert_eq!(crate::wav::read_mono(&p, 8000).unwrap().len(), 24000);
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn the_file_is_valid_after_each_flush_and_errors_are_clear() {
        let p = tmp("flush");
        let mut w = StereoWavWriter::create(&p, 8000).unwrap();
        w.write(&[1; 800], &[2; 800]).unwrap();
        w.flush().unwrap();
        w.write(&[3; 100], &[4; 100]).unwrap();
        // Read while the writer is still open: the flushed part is a whole WAV.
        let r = hound::WavReader::open(&p).unwrap();
        assert_eq!(r.len(), 1600);
        assert!(w.write(&[1; 3], &[1; 2]).is_err());
        drop(w);
        let missing = std::env::temp_dir().join("cf-no-such-dir/x/y.wav");
        let e = StereoWavWriter::create(&missing, 8000).err().unwrap().to_string();
        assert!(e.contains("cf-no-such-dir"), "{e}");
        let _ = std::fs::remove_file(&p);
    }
}
