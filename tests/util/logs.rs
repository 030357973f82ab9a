//! A logger that keeps every `log::error!` record, for the tests that check
//! what the reactor logged. One per test binary: the tests of a binary
//! share it, so each looks for a message of its own.

use std::sync::{Mutex, OnceLock};

fn error_logs() -> &'static Mutex<Vec<String>> {
    static LOGS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, meta: &log::Metadata<'_>) -> bool {
        meta.level() <= log::Level::Error
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            error_logs()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

/// Install the capturing logger (the first call in a test binary does;
/// later calls change nothing).
pub fn capture_errors() {
    static CAPTURE: Capture = Capture;
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Error);
}

/// The error records captured so far that mention `needle`.
pub fn errors_mentioning(needle: &str) -> Vec<String> {
    error_logs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|m| m.contains(needle))
        .cloned()
        .collect()
}
