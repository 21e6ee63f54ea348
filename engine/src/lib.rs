//! The Sneakpeek platform core: the data model, storages (the scrapers list, the jobs queue,
//! the scheduler lease), the scheduler, the worker, the scraping runtime and the change feed
//! the UI's live updates follow.
//!
//! Without features this crate is only [`model`], [`error`], [`schedule`], [`retry`] and
//! [`redact`], which compile to wasm for the browser UI. The `runtime` feature adds everything
//! that needs tokio, sqlx or the network; only the server side enables it. No HTTP framework lives here: the server and
//! the UI call [`Engine`], the one implementation of every operation.

#![warn(missing_docs)]

pub mod error;
pub mod model;
pub mod redact;
pub mod retry;
pub mod schedule;

#[cfg(feature = "runtime")]
mod engine;
#[cfg(feature = "runtime")]
pub mod feed;
#[cfg(feature = "runtime")]
pub mod scheduler;
#[cfg(feature = "runtime")]
pub mod scraper;
#[cfg(feature = "runtime")]
pub mod storage;
#[cfg(feature = "runtime")]
pub mod sync;
#[cfg(feature = "test-support")]
pub mod testing;
#[cfg(feature = "runtime")]
pub mod worker;

#[cfg(feature = "runtime")]
pub use engine::{Background, Engine, MAX_ACTIVE_EPHEMERAL_RUNS};
pub use error::{Error, Result};
