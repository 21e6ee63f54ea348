//! The pages of the UI, one module per page (the form serves both new and edit). What several
//! pages show is in [`crate::components`]; a page never takes anything from another.

pub mod dashboard;
pub mod form;
pub mod job;
pub mod login;
pub mod scraper;
pub mod scrapers;
