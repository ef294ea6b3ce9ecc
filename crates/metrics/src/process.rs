//! This process's CPU, memory, threads and file descriptors, from `/proc/self` (Linux; on
//! other systems nothing is written), under the names Prometheus client libraries use; and,
//! when the binary's allocator can tell ([`set_heap_reader`]), the heap's own figures.

use std::sync::OnceLock;

use crate::{Kind, Text};

/// `/proc` reports CPU times in USER_HZ, which the kernel fixes at 100 for user space.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Default, PartialEq)]
pub struct Process {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub threads: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// Fields of `/proc/PID/stat` after the command name (which may hold spaces): field 3 first.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default()
}

fn parse(stat: &str, status: &str, limits: &str, proc_stat: &str) -> Process {
    let f = stat_fields(stat);
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let status_kb = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    let max_fds = limits.lines().find_map(|l| l.strip_prefix("Max open files")?.split_whitespace().next()?.parse().ok());
    let btime = proc_stat.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok());
    Process {
        cpu_seconds: field(14).zip(field(15)).map(|(user, system)| (user + system) as f64 / USER_HZ),
        resident_bytes: status_kb("VmRSS:").map(|kb| kb * 1024),
        threads: status_kb("Threads:"),
        open_fds: None,
        max_fds,
        start_time_seconds: btime.zip(field(22)).map(|(b, t)| b as f64 + t as f64 / USER_HZ),
    }
}

/// Reads `/proc/self`.
pub fn read() -> Process {
    let get = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mut p = parse(&get("/proc/self/stat"), &get("/proc/self/status"), &get("/proc/self/limits"), &get("/proc/stat"));
    p.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    p
}

/// The allocator's figures: bytes the program has allocated (live) and bytes of memory the
/// allocator holds resident for them. Their difference is what the allocator keeps (free
/// space, fragmentation), which RSS alone cannot tell from live data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heap {
    pub allocated_bytes: u64,
    pub resident_bytes: u64,
}

static HEAP: OnceLock<fn() -> Option<Heap>> = OnceLock::new();

/// Registers how to read the heap figures (the binary that picks the allocator does, once).
pub fn set_heap_reader(read: fn() -> Option<Heap>) {
    let _ = HEAP.set(read);
}

pub fn heap() -> Option<Heap> {
    HEAP.get().and_then(|read| read())
}

pub fn encode(t: &mut Text) {
    let p = read();
    let h = heap();
    let mut one = |name: &str, help: &str, kind: Kind, v: Option<f64>| {
        if let Some(v) = v {
            t.family(name, help, kind);
            t.sample(name, &[], v);
        }
    };
    one("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", Kind::Counter, p.cpu_seconds);
    one("process_resident_memory_bytes", "Resident memory size in bytes.", Kind::Gauge, p.resident_bytes.map(|v| v as f64));
    one("process_threads", "OS threads.", Kind::Gauge, p.threads.map(|v| v as f64));
    one("process_open_fds", "Open file descriptors.", Kind::Gauge, p.open_fds.map(|v| v as f64));
    one("process_max_fds", "The limit of open file descriptors.", Kind::Gauge, p.max_fds.map(|v| v as f64));
    one("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds.", Kind::Gauge, p.start_time_seconds);
    one("callfunnel_heap_allocated_bytes", "Bytes the process has allocated and not freed (the allocator's count).", Kind::Gauge, h.map(|h| h.allocated_bytes as f64));
    one("callfunnel_heap_resident_bytes", "Bytes of memory the allocator holds resident (live data, free space and its metadata).", Kind::Gauge, h.map(|h| h.resident_bytes as f64));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_files() {
        let stat = "8338 (a (weird) name) R 8295 8295 3584 0 -1 4194304 98 0 0 0 250 75 0 0 20 0 7 0 1136172 3133440 360";
        let status = "Name:\tx\nVmRSS:\t    1960 kB\nThreads:\t7\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n";
        let p = parse(stat, status, limits, "cpu 1 2 3\nbtime 1700000000\n");
        assert_eq!(p, Process { cpu_seconds: Some(3.25), resident_bytes: Some(1960 * 1024), threads: Some(7), open_fds: None, max_fds: Some(1024), start_time_seconds: Some(1700000000.0 + 11361.72) });
        assert_eq!(parse("", "", "", ""), Process::default());
    }

    #[test]
    fn heap_figures_appear_once_a_reader_is_registered() {
        set_heap_reader(|| Some(Heap { allocated_bytes: 1234, resident_bytes: 5678 }));
        let mut t = Text::default();
        encode(&mut t);
        let out = t.finish();
        assert!(out.contains("\ncallfunnel_heap_allocated_bytes 1234\n"), "{out}");
        assert!(out.contains("\ncallfunnel_heap_resident_bytes 5678\n"), "{out}");
    }
}
