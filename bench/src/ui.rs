//! The UI's weight: the release wasm as the browser fetches it, as stored and compressed.
//!
//! The main module loads with every page. Each lazy route's code was split into modules of
//! its own, listed in cargo-leptos's split manifest; the browser fetches them on the route's
//! first visit, before the page becomes interactive. So a page's first load is the main
//! module plus its route's modules, and the heaviest of those is what a visitor can wait for.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;

use crate::BoxResult;

/// The main module's name in `pkg/`.
const MAIN: &str = "sneakpeek.wasm";
/// Which modules each lazy route needs, written by `cargo leptos build --split`.
const SPLIT_MANIFEST: &str = "__wasm_split_manifest.json";

/// Bytes as stored and as sent with `gzip -9`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct Size {
    pub raw: f64,
    pub gzip: f64,
}

impl std::ops::Add for Size {
    type Output = Size;

    fn add(self, other: Size) -> Size {
        Size {
            raw: self.raw + other.raw,
            gzip: self.gzip + other.gzip,
        }
    }
}

pub struct WasmWeight {
    /// What every page loads.
    pub main: Size,
    /// The lazy route whose first load (main module included) is largest, and that load.
    pub heaviest_page: (String, Size),
    /// Every module, as a visitor who opens every page fetches them.
    pub all: Size,
}

/// Weighs the wasm under `pkg`, the site's package directory.
pub fn wasm_weight(pkg: &Path) -> BoxResult<WasmWeight> {
    let built_by = "built by `cargo leptos build --release --split`";
    let manifest = std::fs::read_to_string(pkg.join(SPLIT_MANIFEST)).map_err(|error| {
        format!(
            "{}: {error} ({built_by})",
            pkg.join(SPLIT_MANIFEST).display()
        )
    })?;
    // Route (split) name -> the modules it needs, named without `.wasm`.
    let routes: BTreeMap<String, BTreeSet<String>> = serde_json::from_str(&manifest)?;
    let mut sizes = BTreeMap::new();
    let modules: BTreeSet<String> = routes
        .values()
        .flatten()
        .map(|module| format!("{module}.wasm"))
        .collect();
    for module in modules.iter().map(String::as_str).chain([MAIN]) {
        let bytes = std::fs::read(pkg.join(module))
            .map_err(|error| format!("{module}: {error} ({built_by})"))?;
        sizes.insert(module.to_owned(), size_of(&bytes)?);
    }
    let main = sizes[MAIN];
    let heaviest_page = routes
        .iter()
        .map(|(split, modules)| {
            let load = modules.iter().fold(main, |total, module| {
                total + sizes[&format!("{module}.wasm")]
            });
            (route_name(split), load)
        })
        .max_by(|(_, a), (_, b)| a.gzip.total_cmp(&b.gzip))
        .unwrap_or_else(|| ("(no lazy routes)".to_owned(), main));
    let all = sizes
        .values()
        .fold(Size::default(), |total, size| total + *size);
    Ok(WasmWeight {
        main,
        heaviest_page,
        all,
    })
}

/// A split's name without the hash that makes it unique: `__job_page_view_1234` -> `job_page`.
fn route_name(split: &str) -> String {
    let name = split.rsplit_once('_').map_or(split, |(name, hash)| {
        if hash.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            split
        }
    });
    name.trim_start_matches('_')
        .trim_end_matches("_view")
        .to_owned()
}

fn size_of(bytes: &[u8]) -> BoxResult<Size> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    let compressed = encoder.finish()?;
    Ok(Size {
        raw: bytes.len() as f64 / 1024.0,
        gzip: compressed.len() as f64 / 1024.0,
    })
}
