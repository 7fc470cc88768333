//! Prints every network of a MaxMind DB country database with its country, one
//! `network<TAB>CC` line each (IPv4 first), as this crate's reader sees it. Used to compare
//! the reader with other readers: `cargo run -p rampart-geo --example mmdb_dump -- FILE`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: mmdb_dump FILE.mmdb")?
        .into();
    let src = rampart_geo::Source::load_as(&path, rampart_geo::SourceKind::Mmdb, None)?;
    let db = rampart_geo::GeoDb::new(vec![src]);
    let sets = rampart_geo::all_country_sets(&db, rampart_geo::Resolve::First);
    let mut lines: Vec<(ipnet::IpNet, String)> = sets
        .iter()
        .flat_map(|(cc, s)| s.nets().map(move |n| (n, cc.to_string())))
        .collect();
    lines.sort();
    for (n, cc) in lines {
        println!("{n}\t{cc}");
    }
    Ok(())
}
