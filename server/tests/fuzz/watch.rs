//! What the server does behind the replies: every panic in the process and every warning or
//! error it logs, each with the name of the thread it happened on.
//!
//! A panic inside a request handler does not stop the server: hyper drops that one
//! connection (which the client also sees), and the worker turns a handler's panic into a
//! failed job. Both are bugs, and only a process-wide panic hook sees every one of them.
//! Each fuzz run names the threads of its own runtime (`fuzz-memory`, `fuzz-postgres`), so
//! the runs of this binary, which go on at the same time, each claim their own.

use std::io::Write;
use std::sync::{Mutex, Once};

use tracing_subscriber::fmt::MakeWriter;

static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LOGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs the panic hook and the log capture, once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("<unnamed>").to_owned();
            PANICS
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(format!("[{name}] {info}"));
            // A panic of the server under test is reported with the run's failures; the
            // default hook (with its backtrace) is for everyone else's.
            if !name.starts_with("fuzz-") {
                previous(info);
            }
        }));
        // Warnings and errors only: they are what a failure leaves in the log.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
            .with_thread_names(true)
            .with_ansi(false)
            .without_time()
            .with_writer(Capture)
            .try_init();
    });
}

/// The panics on threads named `prefix…`, and on threads without a name (they could be
/// anyone's, so every run reports them).
pub fn panics(prefix: &str) -> Vec<String> {
    of(&PANICS, prefix)
}

/// The log lines written on threads named `prefix…` (or without a name).
pub fn logs(prefix: &str) -> Vec<String> {
    of(&LOGS, prefix)
}

fn of(lines: &Mutex<Vec<String>>, prefix: &str) -> Vec<String> {
    lines
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .filter(|line| line.starts_with(&format!("[{prefix}")) || line.starts_with("[<unnamed>]"))
        .cloned()
        .collect()
}

/// Writes each formatted log event into [`LOGS`].
struct Capture;

struct Line(Vec<u8>);

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::new())
    }
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let text = String::from_utf8_lossy(&self.0).trim_end().to_owned();
            let name = std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_owned();
            LOGS.lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(format!("[{name}] {text}"));
        }
    }
}
