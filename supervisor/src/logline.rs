//! One event, one line: the log's writer folds the line breaks inside an
//! event (GStreamer error texts carry some) into `\n`, so every line of the
//! log starts with its time, level and fields, as docs/operations.md says.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// stderr, one line per event.
pub struct OneLine;

/// Collects one formatted event; writes it, folded, when dropped.
pub struct Event(Vec<u8>);

impl<'a> MakeWriter<'a> for OneLine {
    type Writer = Event;

    fn make_writer(&'a self) -> Event {
        Event(Vec::with_capacity(256))
    }
}

impl Write for Event {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            // One write of the whole line: events from threads do not mix.
            let _ = std::io::stderr().lock().write_all(&fold(&self.0));
        }
    }
}

/// `text` with every line break but the last as `\n` (`\r` as `\r`).
fn fold(text: &[u8]) -> Vec<u8> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut out = Vec::with_capacity(body.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_one_line() {
        let event = b"2026-12-06T03:00:00Z ERROR Could not open resource\nbind failed: Address already in use channel=a\n";
        assert_eq!(
            fold(event),
            b"2026-12-06T03:00:00Z ERROR Could not open resource\\nbind failed: Address already in use channel=a\n"
        );
        assert_eq!(fold(b"plain line\n"), b"plain line\n");
        assert_eq!(fold(b"a\r\nb"), b"a\\r\\nb\n");
    }
}
