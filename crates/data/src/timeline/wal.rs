//! The write buffer's log on local disk: JSON-lines segments `wal-NNNNNNNN.jsonl`, each line
//! one event of one call, and a checkpoint (`checkpoint.json`: the position up to which every
//! event reached the backend), replaced atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TimelineEvent;
use crate::{DataError, Result};

/// A place in the log: segment number and byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    #[serde(rename = "t")]
    pub tenant_id: String,
    #[serde(rename = "c")]
    pub call_id: String,
    #[serde(rename = "e")]
    pub event: TimelineEvent,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Checkpoint {
    pub pos: Pos,
    /// The highest seq ever given out (seqs stay unique across restarts).
    pub max_seq: u64,
}

pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.display().to_string(), source }
}

pub fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("wal-{n:08}.jsonl"))
}

/// Segment numbers present in `dir`, ascending.
pub fn segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let name = e.map_err(io(dir))?.file_name().to_string_lossy().to_string();
        if let Some(n) = name.strip_prefix("wal-").and_then(|r| r.strip_suffix(".jsonl")).and_then(|n| n.parse().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let path = dir.join("checkpoint.json");
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| DataError::Corrupt { path: path.display().to_string(), line: 1, message: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint::default()),
        Err(e) => Err(io(&path)(e)),
    }
}

pub fn write_checkpoint(dir: &Path, c: &Checkpoint) -> Result<()> {
    let path = dir.join("checkpoint.json");
    let tmp = dir.join("checkpoint.json.tmp");
    let body = serde_json::to_vec(c).map_err(|e| DataError::backend("timeline buffer", e))?;
    std::fs::write(&tmp, body).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))
}

/// Complete records of segment `n` from `from` up to byte `to` (a line cut short by a crash
/// is never complete: the writer only advertises offsets after a whole, synced batch).
/// Returns each record with the offset just after it.
pub fn read_range(dir: &Path, n: u64, from: u64, to: Option<u64>, max: usize) -> Result<Vec<(Record, u64)>> {
    use std::io::{Read, Seek, SeekFrom};
    let path = segment_path(dir, n);
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(&path)(e)),
    };
    f.seek(SeekFrom::Start(from)).map_err(io(&path))?;
    let mut buf = Vec::new();
    match to {
        Some(to) => f.take(to.saturating_sub(from)).read_to_end(&mut buf),
        None => f.read_to_end(&mut buf),
    }
    .map_err(io(&path))?;
    let mut out = Vec::new();
    let mut off = from;
    for line in buf.split_inclusive(|&b| b == b'\n') {
        if out.len() >= max || !line.ends_with(b"\n") {
            break;
        }
        off += line.len() as u64;
        let text = &line[..line.len() - 1];
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Record>(text) {
            Ok(r) => out.push((r, off)),
            Err(e) => tracing::error!(segment = n, offset = off, error = %e, "timeline buffer: unreadable record skipped"),
        }
    }
    Ok(out)
}
