//! A problem found in a file the admin wrote, located to the line.

use std::fmt;
use std::path::{Path, PathBuf};

/// One error in a config, pipeline or script file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl Diagnostic {
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn at(file: &Path, line: usize, column: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: Some(line),
            column: Some(column),
            message: message.into(),
        }
    }

    /// A TOML error, located by its byte span in `text`.
    pub fn from_toml(file: &Path, text: &str, error: &toml::de::Error) -> Self {
        let mut message = error.message().trim().to_string();
        match error.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                // toml says only "duplicate key"; its span is the key.
                let key = text
                    .get(span.clone())
                    .filter(|k| k.len() <= 64 && !k.contains('\n'));
                if let (true, Some(key)) = (message == "duplicate key", key) {
                    message = format!("duplicate key `{}`", key.trim());
                }
                Diagnostic::at(file, line, column, message)
            }
            None => Diagnostic::file(file, message),
        }
    }

    /// The offending line of the file, when it can be read, for display
    /// under the error.
    pub fn source_line(&self) -> Option<String> {
        let line = self.line?;
        let text = crate::regular_file::read(&self.file).ok()?;
        text.lines().nth(line.checked_sub(1)?).map(str::to_string)
    }
}

impl Diagnostic {
    /// The offending line, numbered, with a caret under the column:
    ///
    /// ```text
    ///    3 | close_conversaton(event.conversation);
    ///      | ^
    /// ```
    pub fn snippet(&self) -> Option<String> {
        let line = self.line?;
        // Tabs would move the caret; show them as one space each.
        let text = self.source_line()?.replace('\t', " ");
        let number = line.to_string();
        let gutter = " ".repeat(number.len());
        let mut out = format!(" {number} | {text}");
        if let Some(column) = self.column.filter(|c| *c >= 1) {
            let pad = " ".repeat((column - 1).min(text.chars().count()));
            out.push_str(&format!("\n {gutter} | {pad}^"));
        }
        Some(out)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        // Messages from parsers may span lines; the error stays one line.
        let message = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        write!(f, ": {message}")
    }
}

impl std::error::Error for Diagnostic {}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Several diagnostics as one error, one per line.
#[derive(Debug)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|d| d.to_string()).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }

    #[test]
    fn a_duplicate_key_is_named() {
        for text in ["[http]\nx = 1\n[http]\n", "a = 1\na = 2\n"] {
            let error = toml::from_str::<toml::Table>(text).unwrap_err();
            let d = Diagnostic::from_toml(Path::new("c.toml"), text, &error);
            let key = if text.starts_with('[') { "http" } else { "a" };
            assert!(
                d.to_string().contains(&format!("duplicate key `{key}`")),
                "{d}"
            );
        }
    }

    #[test]
    fn display_is_one_line() {
        let d = Diagnostic::at(Path::new("r/x.toml"), 3, 5, "bad\n  thing");
        assert_eq!(d.to_string(), "r/x.toml:3:5: bad thing");
    }
}
