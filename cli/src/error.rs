//! One-line, human errors: every failure the CLI reports is a sentence
//! and a non-zero exit, never a panic or a backtrace.

use std::fmt;

#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, CliError>;

/// Fails with a message.
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::error::CliError(format!($($arg)*))) };
}
pub(crate) use fail;
