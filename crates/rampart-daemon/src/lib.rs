//! rampart's daemon: log sources, matching, detection, the state file and the firewall
//! backend wired together, with a root-only control socket.

pub mod control;
pub mod host;
pub mod log;
pub mod notify;
