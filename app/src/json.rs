//! JSON as the browser reads it: resources, live updates and typed-in text all go through
//! `serde_json`'s byte reader, the one server function results are read with.
//!
//! `serde_json` compiles a separate copy of a type's deserializer for each kind of input it
//! reads from, so reading some JSON from `&str` (as Leptos's default resource codec does) and
//! the rest from bytes would put every shared type's deserializer into the wasm twice.

use std::future::Future;

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The resource codec: JSON text on the page, read as bytes.
pub struct JsonCodec;

impl<T: Serialize> Encoder<T> for JsonCodec {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for JsonCodec {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        parse(text)
    }
}

/// Server data for a page: rendered with the page and read from it on hydration, like
/// [`Resource::new`], with [`JsonCodec`].
pub type Loaded<T> = Resource<T, JsonCodec>;

/// A [`Loaded`] value: `fetcher` runs on the server, and again in the browser when `source`
/// changes.
pub fn load<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Loaded<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

/// Reads a value from JSON text.
pub fn parse<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}
