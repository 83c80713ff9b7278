//! Input echoed in an error stays short: a message names the problem and
//! where it is, and a 60 KB value in it would bury both (and fill logs).

/// Characters of an echoed value shown before it is cut.
const SHOWN: usize = 64;

/// `text` itself when short; else its start, `…`, and its length.
pub fn clip(text: &str) -> String {
    clip_to(text, SHOWN)
}

/// `text` quoted as `{:?}` would, cut as `clip` does.
pub fn quoted(text: &str) -> String {
    match kept(text, SHOWN) {
        None => format!("{text:?}"),
        Some(start) => format!("{start:?}… ({} bytes)", text.len()),
    }
}

/// `text` itself when at most `max` characters; else its first `max`,
/// `…`, and its length.
pub fn clip_to(text: &str, max: usize) -> String {
    match kept(text, max) {
        None => text.to_string(),
        Some(start) => format!("{start}… ({} bytes)", text.len()),
    }
}

/// The first `max` characters of `text`, if it has more.
fn kept(text: &str, max: usize) -> Option<&str> {
    text.char_indices().nth(max).map(|(end, _)| &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_on_a_character() {
        assert_eq!(clip("closed"), "closed");
        assert_eq!(quoted("closed"), "\"closed\"");
        let long = "é".repeat(1000);
        let cut = clip(&long);
        assert!(cut.starts_with(&"é".repeat(SHOWN)), "{cut}");
        assert!(cut.ends_with("… (2000 bytes)"), "{cut}");
        assert!(cut.chars().count() < 100);
        assert_eq!(
            quoted(&long),
            format!("{:?}… (2000 bytes)", "é".repeat(SHOWN))
        );
    }
}
