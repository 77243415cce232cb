//! The glob of a rule's `match`: `*` (any run of characters, dots and slashes included), `?` (one
//! character), `[abc]` / `[a-z]` / `[!abc]` (`[^abc]`), `{a,b}` (alternatives, not nested) and
//! `\` (escape), matched against the whole metric name.
//!
//! Ours rather than `globset`: a rule is matched once per instrument, at registration, so the
//! matcher needs no compiled automaton, and `globset` brought `regex-automata`, `regex-syntax`
//! and `aho-corasick` into every adopting service — 20 s of the 97 s clean release build of a
//! minimal service measured in `benches/footprint`. A proptest checks this matcher against
//! `globset` (a dev-dependency) on generated patterns and names.
//!
//! An empty alternative (`{,b}`) matches the empty string, as in a shell (`globset` ignored it).
//! Braces are expanded when the glob is compiled (at most [`MAX_ALTERNATIVES`] variants); each
//! variant is matched by dynamic programming over (pattern token, name character), so a pattern
//! of many stars costs `O(tokens × characters)`, never exponential backtracking.

/// Most variants a glob's braces may expand to (`{a,b}{c,d}` is 4).
pub const MAX_ALTERNATIVES: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
    Class { negated: bool, ranges: Vec<(char, char)> },
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    variants: Vec<Vec<Token>>,
}

impl Glob {
    /// Compiles `pattern`.
    ///
    /// # Errors
    /// An unclosed `[` or `{`, a nested `{`, an empty class, a trailing `\`, or more than
    /// [`MAX_ALTERNATIVES`] variants; the message names the problem.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        let mut variants: Vec<Vec<Token>> = vec![Vec::new()];
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' => {
                    let mut alternatives: Vec<Vec<Token>> = vec![Vec::new()];
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        match c {
                            '}' => {
                                closed = true;
                                break;
                            }
                            ',' => alternatives.push(Vec::new()),
                            '{' => return Err("nested '{' is not supported".into()),
                            c => {
                                let t = token(c, &mut chars)?;
                                alternatives.last_mut().expect("one alternative").push(t);
                            }
                        }
                    }
                    if !closed {
                        return Err("unclosed '{'".into());
                    }
                    if variants.len() * alternatives.len() > MAX_ALTERNATIVES {
                        return Err(format!("more than {MAX_ALTERNATIVES} alternatives"));
                    }
                    variants = variants
                        .iter()
                        .flat_map(|v| {
                            alternatives.iter().map(move |a| v.iter().chain(a).cloned().collect())
                        })
                        .collect();
                }
                '}' => return Err("'}' without '{'".into()),
                c => {
                    let t = token(c, &mut chars)?;
                    for v in &mut variants {
                        v.push(t.clone());
                    }
                }
            }
        }
        Ok(Glob { variants })
    }

    /// Whether the whole of `name` matches.
    pub fn is_match(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        self.variants.iter().any(|v| matches(v, &name))
    }
}

/// The token starting with `c` (a class reads up to its `]`, an escape its next character).
fn token(c: char, chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Token, String> {
    Ok(match c {
        '*' => {
            while chars.peek() == Some(&'*') {
                chars.next();
            }
            Token::Star
        }
        '?' => Token::Any,
        '\\' => Token::Char(chars.next().ok_or("trailing '\\'")?),
        '[' => {
            let negated = matches!(chars.peek(), Some('!' | '^'));
            if negated {
                chars.next();
            }
            let mut ranges = Vec::new();
            let mut first = true;
            loop {
                let c = chars.next().ok_or("unclosed '['")?;
                if c == ']' && !first {
                    break;
                }
                first = false;
                let lo = if c == '\\' { chars.next().ok_or("trailing '\\'")? } else { c };
                let mut lookahead = chars.clone();
                if lookahead.next() == Some('-') && lookahead.peek().is_some_and(|c| *c != ']') {
                    chars.next();
                    let hi = chars.next().ok_or("unclosed '['")?;
                    if hi < lo {
                        return Err(format!("range {lo}-{hi} is reversed"));
                    }
                    ranges.push((lo, hi));
                } else {
                    ranges.push((lo, lo));
                }
            }
            Token::Class { negated, ranges }
        }
        c => Token::Char(c),
    })
}

/// Dynamic programming over the tokens: `reach[j]` is whether the tokens so far can consume
/// exactly the first `j` characters.
fn matches(tokens: &[Token], name: &[char]) -> bool {
    let mut reach = vec![false; name.len() + 1];
    reach[0] = true;
    for t in tokens {
        let mut next = vec![false; name.len() + 1];
        match t {
            Token::Star => {
                let mut any = false;
                for j in 0..=name.len() {
                    any |= reach[j];
                    next[j] = any;
                }
            }
            one => {
                for j in 0..name.len() {
                    if reach[j] && one_matches(one, name[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reach = next;
        if !reach.contains(&true) {
            return false;
        }
    }
    reach[name.len()]
}

fn one_matches(t: &Token, c: char) -> bool {
    match t {
        Token::Char(x) => *x == c,
        Token::Any => true,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
        }
        Token::Star => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, n: &str) -> bool {
        Glob::new(p).unwrap().is_match(n)
    }

    #[test]
    fn the_documented_grammar() {
        assert!(m("checkout.cart.*", "checkout.cart.items.added"), "* crosses dots");
        assert!(m("*", ""));
        assert!(m("a?c", "abc") && !m("a?c", "ac"));
        assert!(m("job.[abc]", "job.b") && !m("job.[abc]", "job.d"));
        assert!(m("job.[a-c]x", "job.bx") && m("job.[!a-c]", "job.d") && !m("job.[^a-c]", "job.a"));
        assert!(
            m("{http,grpc}.requests", "grpc.requests") && !m("{http,grpc}.requests", "x.requests")
        );
        assert!(m(r"a\*b", "a*b") && !m(r"a\*b", "axb"));
        assert!(m("*a*a*a*a*a*a*a*a*b", &"a".repeat(200).replace("aa", "ab")));
        for bad in ["[abc", "{a,b", "a}", "{a,{b}}", "a\\", "[z-a]"] {
            assert!(Glob::new(bad).is_err(), "{bad}");
        }
        let many = "{a,b}".repeat(9);
        assert!(Glob::new(&many).is_err(), "512 alternatives");
    }

    fn glob_pattern() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            "[a-c.]".prop_map(|s| s),
            Just("*".to_owned()),
            Just("?".to_owned()),
            Just("[ab]".to_owned()),
            Just("[!a]".to_owned()),
            Just("[a-b]".to_owned()),
            Just("{a,b.c}".to_owned()),
            Just("{b,c?}".to_owned()),
        ];
        proptest::collection::vec(atom, 0..7).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// The same answer as `globset` with `literal_separator(false)` (what the SDK used before).
        #[test]
        fn answers_as_globset_does(pattern in glob_pattern(), name in "[a-c./]{0,8}") {
            let ours = Glob::new(&pattern).unwrap().is_match(&name);
            let theirs = globset::GlobBuilder::new(&pattern)
                .literal_separator(false)
                .build()
                .unwrap()
                .compile_matcher()
                .is_match(&name);
            prop_assert_eq!(ours, theirs, "pattern {:?} name {:?}", pattern, name);
        }
    }
}
