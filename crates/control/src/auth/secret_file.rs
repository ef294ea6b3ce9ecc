//! Small key files under the data directory: created once with mode 0600, read afterwards.

use std::io::Write;
use std::path::Path;

pub fn read_or_create(path: &Path, make: impl FnOnce() -> anyhow::Result<Vec<u8>>) -> anyhow::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) if !b.is_empty() => return Ok(b),
        Ok(_) => anyhow::bail!("{} is empty: delete it to make a new key", path.display()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => anyhow::bail!("cannot read {}: {e}", path.display()),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let bytes = make()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(&tmp).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", tmp.display()))?;
    f.write_all(&bytes).and_then(|_| f.sync_all())?;
    // two processes racing: the first link wins, the other reads it
    match std::fs::hard_link(&tmp, path) {
        Ok(()) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(bytes)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&tmp);
            Ok(std::fs::read(path)?)
        }
        Err(e) => anyhow::bail!("cannot store {}: {e}", path.display()),
    }
}
