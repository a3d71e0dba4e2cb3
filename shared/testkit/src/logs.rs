//! Capturing this process's logs, to assert that secrets never reach them.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static CAPTURE: OnceLock<Captured> = OnceLock::new();

/// Installs a subscriber that records every log line (JSON, level `debug` and up, all
/// targets) for the rest of the process. Each nextest test runs in its own process.
pub fn capture() -> Captured {
    CAPTURE
        .get_or_init(|| {
            let captured = Captured::default();
            let sink = captured.0.clone();
            let _ = tracing_subscriber::fmt()
                .json()
                .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
                .with_writer(move || Writer(sink.clone()))
                .try_init();
            captured
        })
        .clone()
}
