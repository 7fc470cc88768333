//! Throughput and latency of `FileSource`.
//!
//! ```text
//! cargo run --release -p rampart-source --example tail_bench -- [LINES] [LINES_PER_WRITE]
//! ```
//!
//! 1. Throughput: a writer thread appends LINES (default 1,000,000) sshd-like lines of about
//!    100 bytes, LINES_PER_WRITE (default 1) per `write` call, while the reader (this
//!    thread) tails the file with `wait` + `read(batch, 4096)`. Reports lines/s and the
//!    reader thread's CPU time (from /proc/thread-self/schedstat), so the writer's cost is
//!    not counted.
//! 2. Latency: the writer appends one line every millisecond (2,000 lines); each line
//!    carries its write time, and the reader records how long after the write it held the
//!    line. Reports p50, p99 and max.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use rampart_source::{FileSource, FileSourceConfig, LineBatch};

fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let lines: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let per_write: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let dir = std::env::temp_dir().join(format!("rampart-tail-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let result = std::panic::catch_unwind(|| {
        throughput(&dir, lines, per_write);
        latency(&dir, 2000);
    });
    let _ = std::fs::remove_dir_all(&dir);
    if result.is_err() {
        std::process::exit(2);
    }
}

fn source(path: &std::path::Path) -> FileSource {
    let cfg = FileSourceConfig::new([path.to_str().expect("utf-8 path")]);
    FileSource::new(cfg, Vec::new()).expect("source")
}

fn throughput(dir: &std::path::Path, lines: usize, per_write: usize) {
    let path = dir.join("throughput.log");
    std::fs::write(&path, b"").expect("create");
    let mut src = source(&path);
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut f = OpenOptions::new()
            .append(true)
            .open(&writer_path)
            .expect("open");
        let mut buf = Vec::new();
        for i in 0..lines {
            writeln!(
                buf,
                "Nov 21 02:38:01 web1 sshd[{}]: Failed password for invalid user admin from 203.0.113.{} port {} ssh2",
                1000 + i % 30000,
                i % 250,
                40000 + i % 20000
            )
            .expect("format");
            if (i + 1) % per_write == 0 {
                f.write_all(&buf).expect("write");
                buf.clear();
            }
        }
        f.write_all(&buf).expect("write");
    });
    let mut batch = LineBatch::with_capacity(4096, 4096 * 128);
    let (mut got, mut bytes) = (0usize, 0usize);
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    while got < lines {
        src.wait(Duration::from_millis(100));
        batch.clear();
        got += src.read(&mut batch, 4096).expect("read");
        bytes += batch.bytes();
        if t0.elapsed() > Duration::from_secs(300) {
            panic!("only {got} of {lines} lines after 300 s");
        }
    }
    let wall = t0.elapsed();
    let cpu = thread_cpu() - cpu0;
    writer.join().expect("writer");
    println!(
        "throughput: {lines} lines ({:.1} MB), {per_write} line(s) per write: wall {:.2} s = {:.0} lines/s; reader CPU {:.3} s = {:.0} lines per CPU-second ({:.2} µs/line)",
        bytes as f64 / 1e6,
        wall.as_secs_f64(),
        lines as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64(),
        lines as f64 / cpu.as_secs_f64().max(1e-9),
        cpu.as_secs_f64() * 1e6 / lines as f64,
    );
    let st = src.stats();
    assert_eq!(st.lines as usize, lines, "every line read once");
}

fn latency(dir: &std::path::Path, count: usize) {
    let path = dir.join("latency.log");
    std::fs::write(&path, b"").expect("create");
    let mut src = source(&path);
    let origin = Instant::now();
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut f = OpenOptions::new()
            .append(true)
            .open(&writer_path)
            .expect("open");
        for i in 0..count {
            let ns = origin.elapsed().as_nanos();
            writeln!(f, "{ns} Nov 21 02:38:01 web1 sshd[1]: line {i}").expect("write");
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let mut batch = LineBatch::new();
    let mut lat = Vec::with_capacity(count);
    while lat.len() < count {
        src.wait(Duration::from_millis(100));
        batch.clear();
        src.read(&mut batch, 4096).expect("read");
        let now = origin.elapsed().as_nanos();
        for (_, line) in &batch {
            let ns: u128 = std::str::from_utf8(line.split(|&b| b == b' ').next().expect("field"))
                .expect("utf-8")
                .parse()
                .expect("number");
            lat.push(Duration::from_nanos((now - ns) as u64));
        }
    }
    writer.join().expect("writer");
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "latency: {count} lines, one per ms: append -> line in hand p50 {:?}, p99 {:?}, max {:?}",
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1]
    );
}
