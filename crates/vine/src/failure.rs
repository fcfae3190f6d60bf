//! How a command fails, and the exit code each way of failing gets.

use std::process::ExitCode;

/// How a command failed; [`Failure::report`] maps it to an exit code.
#[derive(Debug)]
pub enum Failure {
    /// The problems were already printed (exit 1).
    Reported,
    /// An error to print (exit 1).
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Error(e.into())
    }
}

impl Failure {
    /// Prints what is left to print (an [`Failure::Error`]) on stderr and
    /// returns the exit code: 1 either way.
    pub fn report(self) -> ExitCode {
        match self {
            Self::Reported => ExitCode::from(1),
            Self::Error(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// Result of a command.
pub type Outcome = Result<(), Failure>;
