//! Splits a target into tokens: words (paths, function names, numbers, booleans), quoted
//! strings, `#A` references and punctuation. Pure, one pass, byte positions.
//!
//! A word runs until whitespace or one of `( ) , ' " |`. Inside a word, `{…}` (alternatives,
//! `${var}`) and `[…]` (character classes, `[[var]]`) are read whole, commas included. `=`
//! ends a word (it separates a keyword argument from its value) unless the word already has a
//! `;` (a tagged name, `a.b;env=prod`).
use super::ast::Span;
use crate::error::ParseError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A word: path, function name, number, boolean or `None`.
    Word(String),
    /// A quoted string, unescaped.
    Str(String),
    /// `#A`.
    Ref(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `=`
    Eq,
    /// `|`
    Pipe,
    /// End of input.
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Its bytes in the target.
    pub span: Span,
}

/// Reads every token of `src` (ending with [`Tok::Eof`]).
pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let b = src.as_bytes();
    let err = |pos: usize, message: String| ParseError { pos, message, target: src.to_owned() };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let single = match c {
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b',' => Some(Tok::Comma),
            b'=' => Some(Tok::Eq),
            b'|' => Some(Tok::Pipe),
            _ => None,
        };
        if let Some(tok) = single {
            i += 1;
            out.push(Token { tok, span: Span { start, end: i } });
            continue;
        }
        if c == b'\'' || c == b'"' {
            let mut s = String::new();
            i += 1;
            loop {
                let Some(&d) = b.get(i) else {
                    return Err(err(
                        start,
                        format!("unterminated string: `{}` is never closed", c as char),
                    ));
                };
                if d == c {
                    i += 1;
                    break;
                }
                // `\'`, `\"` and `\\` are escapes; any other backslash is kept (regexes, `\1`)
                if d == b'\\' && matches!(b.get(i + 1), Some(&e) if e == c || e == b'\\') {
                    i += 1;
                }
                // copy one whole UTF-8 character
                let ch_len = utf8_len(b[i]);
                s.push_str(&src[i..i + ch_len]);
                i += ch_len;
            }
            out.push(Token { tok: Tok::Str(s), span: Span { start, end: i } });
            continue;
        }
        if c == b'#' && b.get(i + 1).is_some_and(|d| d.is_ascii_alphabetic()) {
            i += 1;
            while b.get(i).is_some_and(|d| d.is_ascii_alphanumeric() || *d == b'_') {
                i += 1;
            }
            if b.get(i).is_none_or(|d| ends_word(*d)) {
                out.push(Token {
                    tok: Tok::Ref(src[start + 1..i].to_owned()),
                    span: Span { start, end: i },
                });
                continue;
            }
            i = start; // `#A.b`: not a reference, read it as a word
        }
        // a word
        let mut tagged = false;
        while i < b.len() {
            let d = b[i];
            if ends_word(d) || (d == b'=' && !tagged) {
                break;
            }
            match d {
                b';' => {
                    tagged = true;
                    i += 1;
                }
                b'{' => {
                    i = close_group(b, i, b'{', b'}')
                        .ok_or_else(|| err(i, "unclosed `{`".into()))?
                }
                b'[' if b.get(i + 1) == Some(&b'[') => {
                    i = find(b, i + 2, b"]]").ok_or_else(|| err(i, "unclosed `[[`".into()))? + 2;
                }
                b'[' => {
                    i = close_group(b, i, b'[', b']')
                        .ok_or_else(|| err(i, "unclosed `[`".into()))?
                }
                b'}' => return Err(err(i, "unexpected `}`".into())),
                b']' => return Err(err(i, "unexpected `]`".into())),
                _ => i += utf8_len(d),
            }
        }
        out.push(Token { tok: Tok::Word(src[start..i].to_owned()), span: Span { start, end: i } });
    }
    out.push(Token { tok: Tok::Eof, span: Span { start: b.len(), end: b.len() } });
    Ok(out)
}

fn ends_word(d: u8) -> bool {
    d.is_ascii_whitespace() || matches!(d, b'(' | b')' | b',' | b'\'' | b'"' | b'|')
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// The index after the `close` matching the `open` at `i` (no nesting: Graphite has none).
fn close_group(b: &[u8], i: usize, open: u8, close: u8) -> Option<usize> {
    debug_assert_eq!(b[i], open);
    let j = b[i + 1..].iter().position(|&d| d == close || d == open)?;
    (b[i + 1 + j] == close).then_some(i + 2 + j)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn braces_and_brackets_keep_their_commas_inside_a_word() {
        assert_eq!(
            toks("sumSeries(a.{b,c}.[0-9], d)"),
            vec![
                Tok::Word("sumSeries".into()),
                Tok::LParen,
                Tok::Word("a.{b,c}.[0-9]".into()),
                Tok::Comma,
                Tok::Word("d".into()),
                Tok::RParen,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn keyword_equals_splits_but_tag_equals_does_not() {
        assert_eq!(
            toks("f(x=1, a;k=v)"),
            vec![
                Tok::Word("f".into()),
                Tok::LParen,
                Tok::Word("x".into()),
                Tok::Eq,
                Tok::Word("1".into()),
                Tok::Comma,
                Tok::Word("a;k=v".into()),
                Tok::RParen,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_unescape_and_refs_are_tokens() {
        assert_eq!(
            toks(r"'a\'b' #A"),
            vec![Tok::Str("a'b".into()), Tok::Ref("A".into()), Tok::Eof]
        );
    }

    #[test]
    fn unterminated_string_points_at_its_quote() {
        let e = tokenize("alias(a, 'x").unwrap_err();
        assert_eq!(e.pos, 9);
    }
}
