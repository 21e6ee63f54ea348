//! The UI's weight: the release wasm bundle as stored and as sent compressed.

use std::io::Write as _;
use std::path::Path;

use crate::BoxResult;

/// Raw and gzip (level 9) sizes in KiB.
pub fn wasm_sizes(wasm: &Path) -> BoxResult<(f64, f64)> {
    let bytes = std::fs::read(wasm).map_err(|error| format!("{}: {error} (built by `cargo leptos build --release`)", wasm.display()))?;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&bytes)?;
    let compressed = encoder.finish()?;
    Ok((bytes.len() as f64 / 1024.0, compressed.len() as f64 / 1024.0))
}
