//! Errors of loading a profile. Each problem is a [`Diagnostic`] that names the file, the
//! line and column, the field, what is wrong and what is allowed:
//!
//! ```text
//! configs/bad.yaml:14:17: services[0].health.interval: must be greater than zero (allowed: a duration greater than zero, like 10ms, 1s)
//! ```

use std::fmt;
use std::path::PathBuf;

/// One problem in a profile, at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file (or source name given to [`crate::parse`]).
    pub file: String,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
    /// The field path, like `services[0].health.interval`; `(top level)` for the document
    /// itself.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What the field allows.
    pub allowed: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {} (allowed: {})",
            self.file, self.line, self.column, self.field, self.message, self.allowed
        )
    }
}

/// Why a profile was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The profile file could not be read.
    #[error("{}: cannot read the profile: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The text is not well-formed YAML.
    #[error("{0}")]
    Syntax(Diagnostic),
    /// The YAML does not fit the schema: an unknown key, a missing key, a value of the
    /// wrong type or out of its type's range. Deserialisation stops at the first one.
    #[error("{0}")]
    Schema(Diagnostic),
    /// The profile fits the schema but its values are not acceptable. Every problem found
    /// is listed, in file order (never empty).
    #[error("{}", Lines(.0))]
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// The diagnostics of this error: one for a syntax or schema error, all of them for an
    /// invalid profile, none for a read error.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Syntax(d) | ConfigError::Schema(d) => std::slice::from_ref(d),
            ConfigError::Invalid(ds) => ds,
        }
    }
}

/// Displays diagnostics one per line.
struct Lines<'a>(&'a [Diagnostic]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            d.fmt(f)?;
        }
        Ok(())
    }
}
