//! The filters shipped inside the binary (the `filters/` directory of the repository).

/// A built-in filter: its name, its TOML definition and its annotated corpus.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The name users write (`filter = "sshd"`).
    pub name: &'static str,
    /// The filter definition (TOML).
    pub toml: &'static str,
    /// The annotated corpus that proves it (`# expect:` lines).
    pub corpus: &'static str,
}

macro_rules! builtin {
    ($name:literal) => {
        Builtin {
            name: $name,
            toml: include_str!(concat!("../../../filters/", $name, ".toml")),
            corpus: include_str!(concat!("../../../filters/", $name, ".corpus.log")),
        }
    };
}

/// Every built-in filter, sorted by name.
pub const BUILTINS: &[Builtin] = &[
    builtin!("apache-auth"),
    builtin!("asterisk"),
    builtin!("dovecot"),
    builtin!("exim"),
    builtin!("freeswitch"),
    builtin!("mysqld"),
    builtin!("nginx-auth"),
    builtin!("nginx-limit-req"),
    builtin!("postfix"),
    builtin!("proftpd"),
    builtin!("sshd"),
    builtin!("vsftpd"),
    builtin!("web-badbots"),
    builtin!("web-scan"),
];

/// Looks a built-in filter up by name.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
