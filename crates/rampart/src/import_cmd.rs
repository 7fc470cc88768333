//! `rampart import fail2ban [DIR]`: fail2ban's jails as a native configuration on stdout,
//! and what could not be carried over on stderr (or everything as one JSON document).

use std::io::{self, Write};
use std::process::ExitCode;

use rampart_f2b::jail::Warning;
use serde_json::json;

use crate::cli::ImportFail2banArgs;

fn warnings_json(list: &[Warning]) -> serde_json::Value {
    list.iter()
        .map(|w| json!({"jail": w.jail, "option": w.option, "message": w.message}))
        .collect()
}

pub fn fail2ban(args: &ImportFail2banArgs) -> anyhow::Result<ExitCode> {
    let imp = rampart_config::fail2ban::import(&args.dir, args.all)?;
    let mut out = io::stdout().lock();
    if args.json {
        let doc = json!({
            "dir": imp.dir.display().to_string(),
            "config": imp.toml,
            "jails": imp.jails,
            "skipped": warnings_json(&imp.skipped),
            "warnings": warnings_json(&imp.warnings),
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    out.write_all(imp.toml.as_bytes())?;
    out.flush()?;
    let mut err = io::stderr().lock();
    writeln!(
        err,
        "imported {} jail(s) from {}: {}",
        imp.jails.len(),
        imp.dir.display(),
        imp.jails.join(", ")
    )?;
    for s in &imp.skipped {
        writeln!(
            err,
            "not imported: [{}] {}: {}",
            s.jail, s.option, s.message
        )?;
    }
    if imp.warnings.is_empty() {
        writeln!(err, "every setting was carried over")?;
    } else {
        writeln!(err, "not carried over ({}):", imp.warnings.len())?;
        for w in &imp.warnings {
            writeln!(err, "  [{}] {}: {}", w.jail, w.option, w.message)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
