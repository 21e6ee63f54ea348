//! Why a server did not start, said to the operator who started it: each error names the
//! setting or the file at fault, and keeps the error underneath as its source, so that
//! [`engine::error::report`] prints the whole chain on one line.

use std::path::PathBuf;

use engine::scraper::MiddlewareConfigError;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting that cannot work, alone or with another: the message names them.
    #[error("{0}")]
    InvalidSettings(String),
    #[error("--scrapers-file {}: cannot read it", path.display())]
    ReadScrapersFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--scrapers-file {}: {message}", path.display())]
    ParseScrapersFile { path: PathBuf, message: String },
    #[error("--scrapers-file: scraper {name:?}: {}", error.describe())]
    InvalidListedScraper { name: String, error: engine::Error },
    #[error("--scrapers-file: cannot create {name:?} in a read-only database; start once without --read-only to seed it")]
    SeedReadOnly { name: String },
    #[error("--scrapers-file: could not create {name:?}")]
    Seed {
        name: String,
        #[source]
        source: engine::Error,
    },
    #[error("--database-url: cannot use the database")]
    Database(#[source] engine::Error),
    /// The global middleware settings (`--middleware`) or the limits they set.
    #[error(transparent)]
    Middleware(#[from] MiddlewareConfigError),
}
