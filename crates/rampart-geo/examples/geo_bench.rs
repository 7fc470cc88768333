//! The geo benchmark (run by bench/geo.sh; build with --release):
//!
//! ```text
//! geo_bench build  FILE...   load the files, build every country's aggregated IPv4+IPv6 set
//! geo_bench lookup N FILE... load the files, then N random IPv4 lookups three ways
//! ```
//!
//! Times are CPU seconds of this single-threaded process (`/proc/self/schedstat`).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use rampart_geo::{all_country_sets, GeoDb, Resolve, Source};

fn cpu() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// xorshift64*: a fixed, fast pseudo-random sequence.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn load(paths: &[PathBuf]) -> Result<GeoDb, Box<dyn std::error::Error>> {
    let sources = paths
        .iter()
        .map(|p| Source::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GeoDb::new(sources))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: geo_bench build FILE... | geo_bench lookup N FILE...";
    let mode = args.first().ok_or(usage)?.as_str();
    match mode {
        "build" => {
            let paths: Vec<PathBuf> = args[1..].iter().map(PathBuf::from).collect();
            let t0 = cpu();
            let db = load(&paths)?;
            let t1 = cpu();
            let sets = all_country_sets(&db, Resolve::First);
            let t2 = cpu();
            let v4: usize = sets.values().map(|s| s.v4.len()).sum();
            let v6: usize = sets.values().map(|s| s.v6.len()).sum();
            let records: usize = db
                .sources()
                .iter()
                .filter_map(|s| s.rir())
                .map(|f| f.len_v4() + f.len_v6())
                .sum();
            println!("files            {}", paths.len());
            println!("address records  {records}");
            println!("countries        {}", sets.len());
            println!("IPv4 prefixes    {v4}");
            println!("IPv6 prefixes    {v6}");
            println!("load+parse+index {:.3} CPU s", t1 - t0);
            println!("country sets     {:.3} CPU s", t2 - t1);
            println!("total            {:.3} CPU s", t2 - t0);
        }
        "lookup" => {
            let n: u64 = args.get(1).ok_or(usage)?.parse()?;
            let paths: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
            let db = load(&paths)?;
            let addrs: Vec<u32> = {
                let mut r = Rng(0x9E37_79B9_7F4A_7C15);
                (0..n).map(|_| (r.next() >> 32) as u32).collect()
            };
            let ip = |a: u32| IpAddr::V4(Ipv4Addr::from(a));
            // Country by precedence: one search in the merged table.
            let t0 = cpu();
            let mut hits = 0u64;
            for &a in &addrs {
                hits += u64::from(black_box(db.country(black_box(ip(a)))).is_some());
            }
            let t1 = cpu();
            let per = (t1 - t0) / n as f64;
            println!(
                "GeoDb::country         {n} lookups, {hits} with a country: {:.1} ns each, {:.1} M/s",
                per * 1e9,
                1e-6 / per
            );
            // The registry block (first RIR source that has one).
            let t0 = cpu();
            let mut blocks = 0u64;
            for &a in &addrs {
                blocks += u64::from(black_box(db.registry_block(black_box(ip(a)))).is_some());
            }
            let t1 = cpu();
            let per = (t1 - t0) / n as f64;
            println!(
                "GeoDb::registry_block  {n} lookups, {blocks} in a block: {:.1} ns each, {:.1} M/s",
                per * 1e9,
                1e-6 / per
            );
            // The whois answer of every source (allocates a Vec per call).
            let m = (n / 10).max(1);
            let t0 = cpu();
            let mut answers = 0u64;
            for &a in addrs.iter().take(m as usize) {
                answers += black_box(db.lookup(black_box(ip(a)))).len() as u64;
            }
            let t1 = cpu();
            let per = (t1 - t0) / m as f64;
            println!(
                "GeoDb::lookup          {m} lookups, {answers} answers: {:.1} ns each, {:.1} M/s",
                per * 1e9,
                1e-6 / per
            );
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
