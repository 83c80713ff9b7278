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
                let key = (text.get(span.clone()))
                    .filter(|k| message == "duplicate key" && k.len() <= 64 && !k.contains('\n'));
                if let Some(key) = key {
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
        let column = self.column.filter(|c| *c >= 1);
        let (text, caret) = window(&text, column.map_or(0, |c| c - 1));
        let number = line.to_string();
        let gutter = " ".repeat(number.len());
        let mut out = format!(" {number} | {text}");
        if column.is_some() {
            let pad = " ".repeat(caret);
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
        // Messages from parsers may span lines; the error stays one line,
        // and short: a parser may quote a whole (huge) token.
        let message = self
            .message
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        write!(
            f,
            ": {}",
            crate::domain::clip::clip_to(&message, MESSAGE_SHOWN)
        )
    }
}

impl std::error::Error for Diagnostic {}

/// Characters of a message shown before it is cut.
const MESSAGE_SHOWN: usize = 400;
/// Characters of a source line shown on each side of the caret.
const LINE_SHOWN: usize = 60;

/// The part of a long `line` around character `caret` (all of a short
/// one), `…` where it is cut, and where the caret falls in it.
fn window(line: &str, caret: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let caret = caret.min(chars.len());
    if chars.len() <= 2 * LINE_SHOWN {
        return (line.to_string(), caret);
    }
    let start = caret.saturating_sub(LINE_SHOWN);
    let end = (caret + LINE_SHOWN).min(chars.len());
    let mut shown = String::new();
    let mut at = caret - start;
    if start > 0 {
        shown.push('…');
        at += 1;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, at)
}

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
    fn a_huge_line_or_message_is_shown_cut_around_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("huge.rhai");
        let line = format!("{}x{}", "a".repeat(100_000), "b".repeat(100_000));
        std::fs::write(&file, &line).unwrap();
        let message = format!("Undefined variable: {line}");
        let d = Diagnostic::at(&file, 1, 100_001, message);
        let shown = d.to_string();
        assert!(shown.len() < 600, "{} bytes", shown.len());
        assert!(shown.ends_with("… (200021 bytes)"), "{shown}");
        let snippet = d.snippet().unwrap();
        let (text, caret) = snippet.split_once('\n').unwrap();
        assert!(text.len() < 200, "{text}");
        // The caret is under the `x` at column 100,001.
        let text: Vec<char> = text.chars().collect();
        let caret = caret.chars().position(|c| c == '^').unwrap();
        assert_eq!(text[caret], 'x', "{snippet}");
    }

    #[test]
    fn a_short_line_is_shown_whole() {
        assert_eq!(
            window("close_conversaton(id);", 3),
            ("close_conversaton(id);".into(), 3)
        );
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
