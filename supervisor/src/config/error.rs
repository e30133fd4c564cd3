//! Where a config error is: [`ConfigError`] (file, line, column, key
//! path, what was wrong), and the list one load collects them in.

use std::fmt;
use std::ops::Range;

use super::schema::Config;

/// A config error a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {path}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Key path, e.g. `channel[0].input[1].uri`.
    pub path: String,
    pub message: String,
}

impl Config {
    /// An error at `span` of the config text (for checks made after
    /// loading, such as encoder probing).
    pub fn error_at(
        &self,
        span: Range<usize>,
        path: impl fmt::Display,
        message: impl fmt::Display,
    ) -> ConfigError {
        let mut errors = Errors {
            parts: &self.source.0,
            text: &self.source.1,
            list: Vec::new(),
        };
        errors.push(span, path, message);
        errors.list.remove(0)
    }
}

/// Line and column (1-based) of byte `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// The errors one load finds, each placed in its text.
pub(super) struct Errors<'a> {
    /// The files `text` joins (the main file, then its drop-ins): each
    /// name with the byte where its text begins.
    pub(super) parts: &'a [(String, usize)],
    pub(super) text: &'a str,
    pub(super) list: Vec<ConfigError>,
}

impl Errors<'_> {
    pub(super) fn push(
        &mut self,
        span: Range<usize>,
        path: impl fmt::Display,
        message: impl fmt::Display,
    ) {
        let (file, start) = self
            .parts
            .iter()
            .rev()
            .find(|(_, start)| *start <= span.start)
            .map_or(("", 0), |(f, s)| (f.as_str(), *s));
        let text = self.text.get(start..).unwrap_or_default();
        let (line, column) = line_col(text, span.start - start);
        self.list.push(ConfigError {
            file: file.to_owned(),
            line,
            column,
            path: path.to_string(),
            message: message.to_string(),
        });
    }
}
