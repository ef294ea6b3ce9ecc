//! One contract for every RecordingStore: S3 (scripts/services.sh up s3 starts s3s-fs, which
//! checks SigV4 signatures) and the LocalRecordings twin.

mod common;

use bytes::Bytes;
use callfunnel_data::DataError;
use callfunnel_data::recordings::*;
use common::{service_env, unique};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

const MIB: usize = 1024 * 1024;

fn s3_config() -> S3Config {
    S3Config {
        endpoint: service_env("CF_TEST_S3_ENDPOINT"),
        region: service_env("CF_TEST_S3_REGION"),
        bucket: service_env("CF_TEST_S3_BUCKET"),
        access_key: service_env("CF_TEST_S3_ACCESS_KEY"),
        secret_key: service_env("CF_TEST_S3_SECRET_KEY"),
    }
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(unique("cf-rec"));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// A backend and the way a browser would follow its download link.
enum Backend {
    S3(S3Recordings),
    Local(LocalRecordings),
}

impl Backend {
    fn store(&self) -> &dyn RecordingStore {
        match self {
            Backend::S3(s) => s,
            Backend::Local(s) => s,
        }
    }

    /// Follows a presigned link: the bytes, or None when refused.
    async fn fetch(&self, url: &str) -> Option<Bytes> {
        match self {
            Backend::S3(_) => {
                let r = reqwest::get(url).await.expect("GET presigned");
                if r.status().is_success() { Some(r.bytes().await.expect("body")) } else { None }
            }
            // what the server's /recordings route does with the twin's links
            Backend::Local(s) => {
                let (path, query) = url.strip_prefix("/recordings/")?.split_once('?')?;
                let (tenant, file) = path.split_once('/')?;
                let call_id = file.strip_suffix(".wav")?;
                let q: std::collections::HashMap<&str, &str> = query.split('&').filter_map(|kv| kv.split_once('=')).collect();
                let expires = q.get("expires")?.parse().ok()?;
                s.verify_presigned(tenant, call_id, expires, q.get("sig")?).ok()?;
                s.get(tenant, call_id).await.ok()
            }
        }
    }
}

fn s3() -> Backend {
    Backend::S3(S3Recordings::new(&s3_config()).expect("s3 client"))
}

fn local() -> Backend {
    Backend::Local(LocalRecordings::open(tmpdir(), b"test-signing-key-0123456789").expect("open"))
}

/// Deterministic audio-like bytes: any misplaced part changes the result.
fn noise(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(|i| (i as u64).wrapping_mul(2654435761).rotate_right(13) as u8).collect()
}

/// The 44-byte header of a 16-bit stereo 8 kHz PCM WAV holding `data_len` bytes of samples.
fn wav_header(data_len: u32) -> Vec<u8> {
    let fmt: [&[u8]; 7] = [&16u32.to_le_bytes(), &1u16.to_le_bytes(), &2u16.to_le_bytes(), &8000u32.to_le_bytes(),
        &32000u32.to_le_bytes(), &4u16.to_le_bytes(), &16u16.to_le_bytes()];
    [&b"RIFF"[..], &(36 + data_len).to_le_bytes(), b"WAVEfmt ", &fmt.concat(), b"data", &data_len.to_le_bytes()].concat()
}

/// Appends audio and rewrites the header, as the call recorder does at each flush.
fn append_and_flush(path: &Path, audio_so_far: &mut usize, more: usize) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().create(true).append(false).write(true).truncate(false).open(path).expect("open wav");
    if *audio_so_far == 0 {
        f.write_all(&wav_header(0)).expect("header");
    }
    f.seek(SeekFrom::Start(44 + *audio_so_far as u64)).expect("seek");
    f.write_all(&noise(*audio_so_far, more)).expect("audio");
    *audio_so_far += more;
    f.seek(SeekFrom::Start(0)).expect("seek");
    f.write_all(&wav_header(*audio_so_far as u32)).expect("header");
    f.flush().expect("flush");
}

fn fast_opts() -> UploadOptions {
    UploadOptions { poll_interval: Duration::from_millis(50), backoff: Duration::from_millis(20), ..UploadOptions::default() }
}

async fn roundtrip(b: &Backend) {
    let s = b.store();
    let t = unique("t");
    s.put(&t, "call-1", Bytes::from_static(b"RIFF....WAVE")).await.expect("put");
    assert_eq!(&s.get(&t, "call-1").await.expect("get")[..], b"RIFF....WAVE");
    let list = s.list(&t).await.expect("list");
    assert_eq!(list.iter().map(|r| (r.call_id.as_str(), r.size)).collect::<Vec<_>>(), [("call-1", 12)]);
    assert!(matches!(s.get(&t, "call-2").await, Err(DataError::NotFound { .. })));
    assert!(matches!(s.put(&t, "../../etc", Bytes::new()).await, Err(DataError::InvalidId(_))));
    s.delete(&t, "call-1").await.expect("delete");
    s.delete(&t, "call-1").await.expect("deleting again is fine");
    assert!(matches!(s.get(&t, "call-1").await, Err(DataError::NotFound { .. })));
    assert!(s.list(&t).await.expect("list").is_empty());
}

async fn tenant_prefixes_isolated(b: &Backend) {
    let s = b.store();
    let a = unique("t");
    let ab = format!("{a}x"); // shares a's name as a string prefix
    s.put(&a, "c1", Bytes::from_static(b"a")).await.expect("put");
    s.put(&ab, "c2", Bytes::from_static(b"b")).await.expect("put");
    assert_eq!(s.list(&a).await.expect("list").iter().map(|r| r.call_id.clone()).collect::<Vec<_>>(), ["c1"]);
    assert!(matches!(s.get(&ab, "c1").await, Err(DataError::NotFound { .. })));
    let far = SystemTime::now() + Duration::from_secs(3600);
    assert_eq!(s.delete_older_than(&ab, far).await.expect("sweep"), ["c2"]);
    assert_eq!(&s.get(&a, "c1").await.expect("a's recording survives")[..], b"a");
}

async fn growing_file_uploaded_in_parts(b: &Backend) {
    let s = b.store();
    let (t, dir) = (unique("t"), tmpdir());
    let path = dir.join("call.wav");
    let (tx, mut rx) = tokio::sync::watch::channel(UploadProgress::default());
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = UploadOptions { delete_local: true, progress: Some(tx), ..fast_opts() };
    let upload = upload_growing_file(s, &t, "long", &path, async { let _ = done_rx.await; }, &opts);
    let writer = async {
        let mut audio = 0;
        for _ in 0..11 {
            append_and_flush(&path, &mut audio, MIB);
            tokio::task::yield_now().await;
        }
        // the call goes on until a part has gone up while the file is still growing
        tokio::time::timeout(Duration::from_secs(120), rx.wait_for(|p| p.parts_while_growing >= 1))
            .await
            .expect("no part uploaded while growing (hang guard)")
            .expect("progress");
        append_and_flush(&path, &mut audio, 3 * MIB / 2 + 7);
        let _ = done_tx.send(());
        audio
    };
    let (report, audio) = tokio::join!(upload, writer);
    let report = report.expect("upload");
    let total = 44 + audio;
    assert_eq!(report.bytes, total as u64);
    let got = s.get(&t, "long").await.expect("get");
    assert_eq!(got.len(), total);
    assert_eq!(&got[..44], &wav_header(audio as u32)[..], "the final header, not the one of the first flush");
    assert!(got[44..] == noise(0, audio)[..], "audio byte-identical");
    assert_eq!((report.parts, report.parts_while_growing), (3, 1), "{report:?}");
    assert!(report.local_deleted && !path.exists(), "local file removed after success");
}

async fn short_recording_is_one_put(b: &Backend) {
    let s = b.store();
    let (t, dir) = (unique("t"), tmpdir());
    let path = dir.join("short.wav");
    let mut audio = 0;
    append_and_flush(&path, &mut audio, 100_000);
    let report = upload_growing_file(s, &t, "short", &path, async {}, &fast_opts()).await.expect("upload");
    assert_eq!((report.parts, report.local_deleted), (0, false));
    assert!(path.exists(), "kept: not asked to delete");
    assert_eq!(s.get(&t, "short").await.expect("get"), Bytes::from(std::fs::read(&path).expect("read")));
}

/// Fails the first `put_part` and the first `complete` of every upload (or every call, when
/// `always`), like a flaky network.
struct Flaky<'a> {
    inner: &'a dyn RecordingStore,
    always: bool,
    failures: Arc<AtomicUsize>,
}

struct FlakyUpload {
    inner: Box<dyn PartUpload>,
    always: bool,
    failed_part: bool,
    failed_complete: bool,
    failures: Arc<AtomicUsize>,
}

fn flake(failures: &AtomicUsize) -> DataError {
    failures.fetch_add(1, Ordering::SeqCst);
    DataError::backend("s3", "connection reset (injected)")
}

#[async_trait::async_trait]
impl PartUpload for FlakyUpload {
    async fn put_part(&mut self, idx: usize, data: Bytes) -> callfunnel_data::Result<()> {
        if self.always || !self.failed_part {
            self.failed_part = true;
            return Err(flake(&self.failures));
        }
        self.inner.put_part(idx, data).await
    }
    async fn complete(&mut self, n: usize) -> callfunnel_data::Result<()> {
        if self.always || !self.failed_complete {
            self.failed_complete = true;
            return Err(flake(&self.failures));
        }
        self.inner.complete(n).await
    }
    async fn abort(&mut self) -> callfunnel_data::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl RecordingStore for Flaky<'_> {
    async fn put(&self, _: &str, _: &str, _: Bytes) -> callfunnel_data::Result<()> { Err(flake(&self.failures)) }
    async fn get(&self, t: &str, c: &str) -> callfunnel_data::Result<Bytes> { self.inner.get(t, c).await }
    async fn list(&self, t: &str) -> callfunnel_data::Result<Vec<RecordingInfo>> { self.inner.list(t).await }
    async fn delete(&self, t: &str, c: &str) -> callfunnel_data::Result<()> { self.inner.delete(t, c).await }
    async fn delete_older_than(&self, t: &str, at: SystemTime) -> callfunnel_data::Result<Vec<String>> { self.inner.delete_older_than(t, at).await }
    async fn presign_get(&self, t: &str, c: &str, e: Duration) -> callfunnel_data::Result<String> { self.inner.presign_get(t, c, e).await }
    async fn begin_upload(&self, t: &str, c: &str) -> callfunnel_data::Result<Box<dyn PartUpload>> {
        let inner = self.inner.begin_upload(t, c).await?;
        Ok(Box::new(FlakyUpload { inner, always: self.always, failed_part: false, failed_complete: false, failures: self.failures.clone() }))
    }
}

async fn failures_are_retried_and_never_lose_the_file(b: &Backend) {
    let (t, dir) = (unique("t"), tmpdir());
    let path = dir.join("flaky.wav");
    let mut audio = 0;
    append_and_flush(&path, &mut audio, 6 * MIB); // two parts
    let opts = UploadOptions { delete_local: true, max_attempts: 3, ..fast_opts() };
    // transient: one failure each for a part and for completion, then success
    let failures = Arc::new(AtomicUsize::new(0));
    let flaky = Flaky { inner: b.store(), always: false, failures: failures.clone() };
    let report = upload_growing_file(&flaky, &t, "retried", &path, async {}, &UploadOptions { delete_local: false, ..opts.clone() }).await;
    assert_eq!(report.expect("retried upload").parts, 2);
    assert_eq!(failures.load(Ordering::SeqCst), 2);
    assert_eq!(b.store().get(&t, "retried").await.expect("get").len(), 44 + 6 * MIB);
    // persistent: the upload fails, the local file stays, nothing half-written is visible
    let flaky = Flaky { inner: b.store(), always: true, failures: Arc::new(AtomicUsize::new(0)) };
    let err = upload_growing_file(&flaky, &t, "lost", &path, async {}, &opts).await.expect_err("fails");
    assert!(matches!(err, DataError::Backend { .. }), "{err:?}");
    assert_eq!(flaky.failures.load(Ordering::SeqCst), 3, "max_attempts tries");
    assert!(path.exists(), "the local file is kept after a failed upload");
    assert!(matches!(b.store().get(&t, "lost").await, Err(DataError::NotFound { .. })));
    // a later retry of the finished file succeeds and only then removes it
    let report = upload_growing_file(b.store(), &t, "lost", &path, async {}, &opts).await.expect("retry later");
    assert!(report.local_deleted && !path.exists());
    assert_eq!(b.store().get(&t, "lost").await.expect("get").len(), 44 + 6 * MIB);
}

async fn presigned_get(b: &Backend) {
    let s = b.store();
    let t = unique("t");
    s.put(&t, "c1", Bytes::from_static(b"the audio")).await.expect("put");
    s.put(&t, "c2", Bytes::from_static(b"other audio")).await.expect("put");
    let url = s.presign_get(&t, "c1", Duration::from_secs(300)).await.expect("presign");
    assert_eq!(b.fetch(&url).await.as_deref(), Some(&b"the audio"[..]));
    // tampered: another call's path with c1's signature, or a changed signature
    assert_eq!(b.fetch(&url.replace("/c1.wav", "/c2.wav")).await, None, "{url}");
    // a changed signature: flip the first character after its name
    let at = url.find("sig=").or_else(|| url.find("Signature=")).expect("a signature in the link") + 1;
    let at = at + url[at..].find('=').expect("=") + 1;
    let c = url.as_bytes()[at];
    let flipped = format!("{}{}{}", &url[..at], if c == b'a' { 'b' } else { 'a' }, &url[at + 1..]);
    assert_eq!(b.fetch(&flipped).await, None, "{flipped}");
    assert!(matches!(s.presign_get(&t, "c1", Duration::from_secs(8 * 86400)).await, Err(DataError::Invalid { .. })));
}

async fn retention_sweep(b: &Backend) {
    let s = b.store();
    let t = unique("t");
    s.put(&t, "old-1", Bytes::from_static(b"1")).await.expect("put");
    s.put(&t, "old-2", Bytes::from_static(b"2")).await.expect("put");
    // S3 keeps last-modified to the second: keep the cutoff clear of both sides
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cutoff = SystemTime::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.put(&t, "new", Bytes::from_static(b"3")).await.expect("put");
    assert_eq!(s.delete_older_than(&t, cutoff).await.expect("sweep"), ["old-1", "old-2"]);
    assert_eq!(s.list(&t).await.expect("list").iter().map(|r| r.call_id.clone()).collect::<Vec<_>>(), ["new"]);
    assert!(s.delete_older_than(&t, cutoff).await.expect("sweep again").is_empty());
}

macro_rules! contract {
    ($($name:ident),*) => {
        mod on_s3 { use super::*; $( #[tokio::test] async fn $name() { super::$name(&s3()).await; } )* }
        mod on_local { use super::*; $( #[tokio::test] async fn $name() { super::$name(&local()).await; } )* }
    };
}
contract!(roundtrip, tenant_prefixes_isolated, growing_file_uploaded_in_parts, short_recording_is_one_put,
    failures_are_retried_and_never_lose_the_file, presigned_get, retention_sweep);

#[tokio::test]
async fn s3_refuses_a_wrong_secret_key() {
    let cfg = S3Config { secret_key: "not-the-secret".into(), ..s3_config() };
    assert!(!format!("{cfg:?}").contains("not-the-secret"), "Debug hides the secret");
    let s = S3Recordings::new(&cfg).expect("client");
    assert!(!format!("{s:?}").contains("not-the-secret"), "nor does the store's Debug");
    let err = s.put(&unique("t"), "c", Bytes::from_static(b"x")).await.expect_err("refused");
    assert!(matches!(err, DataError::Backend { .. }), "{err:?}");
    assert!(!err.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn local_links_expire_and_need_the_key() {
    let dir = tmpdir();
    let s = LocalRecordings::open(&dir, b"test-signing-key-0123456789").expect("open");
    let other = LocalRecordings::open(&dir, b"another-signing-key-987654").expect("open");
    let url = s.presign_get("acme", "c1", Duration::from_secs(60)).await.expect("presign");
    let q = url.split_once('?').expect("query").1;
    let (exp, sig) = q.split_once("&sig=").expect("sig");
    let exp: u64 = exp.trim_start_matches("expires=").parse().expect("expires");
    assert!(s.verify_presigned("acme", "c1", exp, sig).is_ok());
    assert!(other.verify_presigned("acme", "c1", exp, sig).is_err(), "signed with another key");
    assert!(s.verify_presigned("acme", "c1", exp + 3600, sig).is_err(), "expiry extended");
    assert!(s.verify_presigned("globex", "c1", exp, sig).is_err(), "another tenant");
    // a correctly signed link whose time is up
    let short = s.presign_get("acme", "c1", Duration::from_secs(1)).await.expect("presign");
    let q = short.split_once('?').expect("query").1;
    let (exp, sig) = q.split_once("&sig=").expect("sig");
    let exp: u64 = exp.trim_start_matches("expires=").parse().expect("expires");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let err = s.verify_presigned("acme", "c1", exp, sig).expect_err("expired");
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(matches!(LocalRecordings::open(&dir, b"short"), Err(DataError::Invalid { .. })));
}
