//! The embedded storage: everything in this process's memory, lost at exit.
//!
//! Each storage keeps its data behind one mutex held only for short, non-async sections, so
//! every operation is atomic exactly like its PostgreSQL counterpart.

mod jobs;
mod lease;
mod scrapers;

pub use jobs::MemoryScraperJobsStorage;
pub use lease::MemoryLeaseStorage;
pub use scrapers::MemoryScrapersStorage;
