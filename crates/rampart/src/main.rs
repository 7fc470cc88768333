//! rampart: host intrusion prevention for internet-facing Linux servers.

mod cli;
mod cpu;
mod daemon_cmd;
mod f2b_cmd;
mod filter_cmd;
mod geo_cmd;
mod import_cmd;
mod replay_cmd;

fn main() -> std::process::ExitCode {
    cli::main()
}
