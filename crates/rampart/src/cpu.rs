//! CPU time of this process, for throughput reports.

/// CPU seconds this (single-threaded) process has used so far: from `/proc/self/schedstat`
/// (nanoseconds on the CPU), else `/proc/self/stat` (user + system, in USER_HZ = 100 ticks
/// per second). `None` where neither is readable.
pub fn cpu_seconds() -> Option<f64> {
    if let Some(ns) = std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
    {
        return Some(ns as f64 / 1e9);
    }
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may contain spaces; fields after ')' are plain.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let utime: f64 = f.nth(11)?.parse().ok()?;
    let stime: f64 = f.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU and wall time from a start, for the commands that report their own speed.
#[derive(Debug)]
pub struct Stopwatch {
    cpu0: Option<f64>,
    wall0: std::time::Instant,
}

/// What a [`Stopwatch`] measured.
#[derive(Clone, Copy, Debug)]
pub struct Elapsed {
    /// CPU seconds, where the process's CPU time is readable.
    pub cpu: Option<f64>,
    /// Wall seconds.
    pub wall: f64,
}

impl Stopwatch {
    /// Starts measuring.
    pub fn start() -> Self {
        Self {
            cpu0: cpu_seconds(),
            wall0: std::time::Instant::now(),
        }
    }

    /// The time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Elapsed {
        Elapsed {
            cpu: match (self.cpu0, cpu_seconds()) {
                (Some(a), Some(b)) => Some(b - a),
                _ => None,
            },
            wall: self.wall0.elapsed().as_secs_f64(),
        }
    }
}

impl Elapsed {
    /// `lines` per second of `secs` (0 when no time passed).
    pub fn rate(lines: u64, secs: f64) -> f64 {
        if secs > 0.0 {
            lines as f64 / secs
        } else {
            0.0
        }
    }

    /// The `speed` line of `filter test`: CPU time and lines per CPU second, or wall time
    /// where CPU time is unavailable.
    pub fn speed_line(&self, lines: u64) -> String {
        match self.cpu {
            Some(c) => format!(
                "speed       {c:.3} CPU s, {:.0} lines per CPU second ({:.3} s wall)",
                Self::rate(lines, c),
                self.wall
            ),
            None => format!(
                "speed       {:.3} s wall, {:.0} lines per second",
                self.wall,
                Self::rate(lines, self.wall)
            ),
        }
    }
}
