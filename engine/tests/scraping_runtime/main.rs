//! The scraping runtime against real local HTTP servers (and a local proxy) started by each
//! test: the context's HTTP and parsing API, every middleware, and the built-in handlers.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod context;
mod egress;
mod handlers;
mod limits;
mod middleware;
mod support;
