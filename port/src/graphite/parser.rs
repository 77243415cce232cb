//! Recursive descent over the tokens of [`super::lexer`]:
//!
//! ```text
//! target := expr EOF                      (a series: path, call or #ref)
//! expr   := primary ('|' call)*           (a|f(x) is f(a, x))
//! primary:= WORD '(' args ')' | WORD | STRING | #REF
//! args   := [arg (',' arg)*]
//! arg    := WORD '=' expr | expr
//! ```
//!
//! A WORD is a function name when `(` follows it, a number when it reads as one, `true` /
//! `false` / `None` (any case), otherwise a path (split into nodes and parts here).
use super::ast::{Arg, Call, Expr, Part, PathExpr, PathNode, Span, VarSyntax, Variable};
use super::lexer::{tokenize, Tok, Token};
use crate::error::ParseError;

/// Deepest nesting of calls accepted; deeper input is an error, not a stack overflow.
pub const MAX_DEPTH: usize = 64;

/// Parses one Graphite target.
pub fn parse(target: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(target)?;
    let mut p = Parser { src: target, toks, i: 0, open: Vec::new() };
    if p.peek().tok == Tok::Eof {
        return Err(p.err(0, "empty target".into()));
    }
    let e = p.expr(0)?;
    let t = p.peek().clone();
    match t.tok {
        Tok::Eof => {}
        Tok::RParen => {
            return Err(p.err(t.span.start, "unbalanced parenthesis: unexpected `)`".into()))
        }
        _ => {
            return Err(p.err(
                t.span.start,
                format!("unexpected {} after the expression", describe(&t.tok)),
            ))
        }
    }
    if !e.is_series() {
        return Err(p.err(
            0,
            format!(
                "a target must be a series (a path, a function call or #ref), not {}",
                kind(&e)
            ),
        ));
    }
    Ok(e)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    i: usize,
    /// Positions of the `(` not closed yet, for the "never closed" message.
    open: Vec<usize>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn next(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn err(&self, pos: usize, message: String) -> ParseError {
        ParseError { pos, message, target: self.src.to_owned() }
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut e = self.primary(depth)?;
        while self.peek().tok == Tok::Pipe {
            let pipe = self.next();
            let name_tok = self.next();
            let Tok::Word(name) = name_tok.tok else {
                return Err(
                    self.err(name_tok.span.start, "expected a function call after `|`".into())
                );
            };
            if self.peek().tok != Tok::LParen {
                return Err(self.err(name_tok.span.end, format!("expected `(` after `{name}`")));
            }
            let mut call = self.call(name, name_tok.span, depth)?;
            call.span.start = pipe.span.start;
            call.args.insert(0, Arg { name: None, value: e });
            e = Expr::Call(call);
        }
        Ok(e)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return Err(
                self.err(self.peek().span.start, format!("nesting deeper than {MAX_DEPTH} calls"))
            );
        }
        let t = self.next();
        match t.tok {
            Tok::Str(s) => Ok(Expr::Str(s, t.span)),
            Tok::Ref(r) => Ok(Expr::Ref(r, t.span)),
            Tok::Word(w) => {
                if self.peek().tok == Tok::LParen {
                    return Ok(Expr::Call(self.call(w, t.span, depth)?));
                }
                word(self.src, w, t.span)
            }
            Tok::Eof => Err(self.eof_error(t.span.start)),
            Tok::RParen if !self.open.is_empty() => {
                Err(self.err(t.span.start, "empty argument before `)`".into()))
            }
            Tok::RParen => {
                Err(self.err(t.span.start, "unbalanced parenthesis: unexpected `)`".into()))
            }
            Tok::Comma => Err(self.err(t.span.start, "empty argument before `,`".into())),
            Tok::LParen => Err(self.err(t.span.start, "`(` without a function name".into())),
            Tok::Eq => Err(self.err(t.span.start, "`=` without an argument name".into())),
            Tok::Pipe => Err(self.err(t.span.start, "`|` without a series before it".into())),
        }
    }

    fn eof_error(&self, end: usize) -> ParseError {
        match self.open.last() {
            Some(&open) => self
                .err(open, format!("unbalanced parenthesis: `(` at byte {open} is never closed")),
            None => self.err(end, "unexpected end of target".into()),
        }
    }

    fn call(&mut self, name: String, name_span: Span, depth: usize) -> Result<Call, ParseError> {
        if !is_ident(&name) {
            return Err(self.err(name_span.start, format!("`{name}` is not a function name")));
        }
        let lp = self.next();
        debug_assert_eq!(lp.tok, Tok::LParen);
        self.open.push(lp.span.start);
        let mut args = Vec::new();
        if self.peek().tok == Tok::RParen {
            let rp = self.next();
            self.open.pop();
            return Ok(Call {
                name,
                name_span,
                args,
                span: Span { start: name_span.start, end: rp.span.end },
            });
        }
        loop {
            // keyword argument: WORD '=' expr
            let kw = match (&self.peek().tok, self.toks.get(self.i + 1).map(|t| &t.tok)) {
                (Tok::Word(w), Some(Tok::Eq)) => Some(w.clone()),
                _ => None,
            };
            if let Some(k) = kw {
                let at = self.peek().span.start;
                if !is_ident(&k) {
                    return Err(self.err(at, format!("`{k}` is not an argument name")));
                }
                self.next();
                self.next();
                let value = self.expr(depth + 1)?;
                args.push(Arg { name: Some(k), value });
            } else {
                if args.iter().any(|a: &Arg| a.name.is_some()) {
                    let at = self.peek().span.start;
                    return Err(self.err(at, "positional argument after a keyword argument".into()));
                }
                let value = self.expr(depth + 1)?;
                args.push(Arg { name: None, value });
            }
            let t = self.next();
            match t.tok {
                Tok::Comma => continue,
                Tok::RParen => {
                    self.open.pop();
                    return Ok(Call {
                        name,
                        name_span,
                        args,
                        span: Span { start: name_span.start, end: t.span.end },
                    });
                }
                Tok::Eof => return Err(self.eof_error(t.span.start)),
                other => {
                    return Err(self.err(
                        t.span.start,
                        format!("expected `,` or `)`, found {}", describe(&other)),
                    ))
                }
            }
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Ref(r) => format!("`#{r}`"),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Eq => "`=`".into(),
        Tok::Pipe => "`|`".into(),
        Tok::Eof => "end of target".into(),
    }
}

fn kind(e: &Expr) -> &'static str {
    match e {
        Expr::Str(..) => "a string",
        Expr::Number(..) => "a number",
        Expr::Bool(..) => "a boolean",
        Expr::None(..) => "None",
        _ => "a series",
    }
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A number as Graphite writes one: `-?digits[.digits][e[+-]digits]`.
fn number(w: &str) -> Option<f64> {
    let b = w.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-') || b.first() == Some(&b'+'));
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    let int = digits(&mut i);
    let mut frac = false;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = digits(&mut i);
    }
    if !int && !frac {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    w.parse().ok()
}

fn word(src: &str, w: String, span: Span) -> Result<Expr, ParseError> {
    if let Some(n) = number(&w) {
        return Ok(Expr::Number(n, span));
    }
    if w.eq_ignore_ascii_case("true") {
        return Ok(Expr::Bool(true, span));
    }
    if w.eq_ignore_ascii_case("false") {
        return Ok(Expr::Bool(false, span));
    }
    if w.eq_ignore_ascii_case("none") {
        return Ok(Expr::None(span));
    }
    Ok(Expr::Path(path(src, &w, span.start)?))
}

/// Splits a path word into nodes (and `;k=v` tags) and each node into parts.
pub(crate) fn path(src: &str, w: &str, at: usize) -> Result<PathExpr, ParseError> {
    let err =
        |pos: usize, message: String| ParseError { pos: at + pos, message, target: src.to_owned() };
    let (name, tag_text) = match w.find(';') {
        Some(i) => (&w[..i], Some(i)),
        None => (w, None),
    };
    let mut tags = Vec::new();
    if let Some(i) = tag_text {
        let mut off = i + 1;
        for t in w[i + 1..].split(';') {
            match t.split_once('=') {
                Some((k, v)) if !k.is_empty() => tags.push((k.to_owned(), v.to_owned())),
                _ => return Err(err(off, format!("tag `{t}` is not `key=value`"))),
            }
            off += t.len() + 1;
        }
    }
    let b = name.as_bytes();
    let mut nodes = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // split at dots outside {…} and […]
    while i <= b.len() {
        if i == b.len() || b[i] == b'.' {
            let raw = &name[start..i];
            if raw.is_empty() {
                return Err(err(i, "empty path node".into()));
            }
            nodes.push(PathNode { raw: raw.to_owned(), parts: parts(raw, at + start, src)? });
            start = i + 1;
            i += 1;
            continue;
        }
        match b[i] {
            b'{' => i += b[i..].iter().position(|&c| c == b'}').unwrap_or(b.len() - i - 1) + 1,
            b'[' if b.get(i + 1) == Some(&b'[') => {
                i += name[i..].find("]]").map_or(b.len() - i, |p| p + 2);
            }
            b'[' => i += b[i..].iter().position(|&c| c == b']').unwrap_or(b.len() - i - 1) + 1,
            _ => i += 1,
        }
    }
    Ok(PathExpr { raw: w.to_owned(), span: Span { start: at, end: at + w.len() }, nodes, tags })
}

fn parts(raw: &str, at: usize, src: &str) -> Result<Vec<Part>, ParseError> {
    let err =
        |pos: usize, message: String| ParseError { pos: at + pos, message, target: src.to_owned() };
    let b = raw.as_bytes();
    let mut out: Vec<Part> = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let flush = |lit: &mut String, out: &mut Vec<Part>| {
        if !lit.is_empty() {
            out.push(Part::Literal(std::mem::take(lit)));
        }
    };
    while i < b.len() {
        match b[i] {
            b'*' => {
                flush(&mut lit, &mut out);
                out.push(Part::Star);
                i += 1;
            }
            b'?' => {
                flush(&mut lit, &mut out);
                out.push(Part::Question);
                i += 1;
            }
            b'$' if b.get(i + 1) == Some(&b'{') => {
                let end = raw[i..].find('}').ok_or_else(|| err(i, "unclosed `${`".into()))? + i;
                let inner = &raw[i + 2..end];
                flush(&mut lit, &mut out);
                out.push(Part::Variable(
                    variable(inner, VarSyntax::Braces)
                        .ok_or_else(|| err(i, format!("bad variable `${{{inner}}}`")))?,
                ));
                i = end + 1;
            }
            b'$' if b.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') => {
                let mut j = i + 1;
                while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                    j += 1;
                }
                flush(&mut lit, &mut out);
                out.push(Part::Variable(Variable {
                    name: raw[i + 1..j].to_owned(),
                    format: None,
                    syntax: VarSyntax::Dollar,
                }));
                i = j;
            }
            b'[' if b.get(i + 1) == Some(&b'[') => {
                let end = raw[i..].find("]]").ok_or_else(|| err(i, "unclosed `[[`".into()))? + i;
                let inner = &raw[i + 2..end];
                flush(&mut lit, &mut out);
                out.push(Part::Variable(
                    variable(inner, VarSyntax::Brackets)
                        .ok_or_else(|| err(i, format!("bad variable `[[{inner}]]`")))?,
                ));
                i = end + 2;
            }
            b'[' => {
                let end = raw[i..].find(']').ok_or_else(|| err(i, "unclosed `[`".into()))? + i;
                if end == i + 1 {
                    return Err(err(i, "empty character class `[]`".into()));
                }
                flush(&mut lit, &mut out);
                out.push(Part::CharClass(raw[i + 1..end].to_owned()));
                i = end + 1;
            }
            b'{' => {
                let end = raw[i..].find('}').ok_or_else(|| err(i, "unclosed `{`".into()))? + i;
                flush(&mut lit, &mut out);
                out.push(Part::Alternatives(
                    raw[i + 1..end].split(',').map(str::to_owned).collect(),
                ));
                i = end + 1;
            }
            _ => {
                let n = raw[i..].chars().next().map_or(1, char::len_utf8);
                lit.push_str(&raw[i..i + n]);
                i += n;
            }
        }
    }
    flush(&mut lit, &mut out);
    Ok(out)
}

fn variable(inner: &str, syntax: VarSyntax) -> Option<Variable> {
    let (name, format) = match inner.split_once(':') {
        Some((n, f)) => (n, Some(f.to_owned())),
        None => (inner, None),
    };
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return None;
    }
    Some(Variable { name: name.to_owned(), format, syntax })
}
