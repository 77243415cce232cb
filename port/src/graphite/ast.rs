//! The syntax tree of a Graphite target. Every node keeps its byte span in the target so the
//! translator can point at the function or argument it cannot take.
//!
//! [`std::fmt::Display`] writes a tree back as canonical Graphite text (single-quoted strings,
//! `, ` between arguments, pipes expanded into nested calls). Parsing that text gives the same
//! tree again, which the round-trip property test checks.
use std::fmt;

/// Byte range `start..end` in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A Graphite expression: a target, or an argument of a function.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A metric path pattern, `stats.counters.{a,b}.*.count`, possibly tagged (`name;k=v`).
    Path(PathExpr),
    /// A function call, `sumSeries(a.*, b)`.
    Call(Call),
    /// A quoted string, `'1h'` or `"sum"` (unescaped).
    Str(String, Span),
    /// A number, `5`, `-0.5`, `1e3`.
    Number(f64, Span),
    /// `true` / `false` (any case).
    Bool(bool, Span),
    /// `None` (Graphite's null argument).
    None(Span),
    /// `#A`: the series of another target of the same panel.
    Ref(String, Span),
}

impl Expr {
    /// The expression's byte span in the target.
    pub fn span(&self) -> Span {
        match self {
            Expr::Path(p) => p.span,
            Expr::Call(c) => c.span,
            Expr::Str(_, s) | Expr::Number(_, s) | Expr::Bool(_, s) | Expr::None(s) => *s,
            Expr::Ref(_, s) => *s,
        }
    }

    /// Whether this expression yields series (a path, a call or a reference), as opposed to a
    /// literal argument.
    pub fn is_series(&self) -> bool {
        matches!(self, Expr::Path(_) | Expr::Call(_) | Expr::Ref(..))
    }
}

/// A function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The function name as written (`sumSeries`).
    pub name: String,
    /// Span of the name.
    pub name_span: Span,
    /// The arguments in order; keyword arguments have a name.
    pub args: Vec<Arg>,
    /// Span of the whole call (for a piped call, the `|name(...)` part).
    pub span: Span,
}

/// One argument of a [`Call`].
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// `Some("func")` for a keyword argument `func='sum'`.
    pub name: Option<String>,
    /// The value.
    pub value: Expr,
}

/// A metric path pattern: dot-separated nodes, then optional `;tag=value` pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct PathExpr {
    /// The text as written.
    pub raw: String,
    /// Span in the target.
    pub span: Span,
    /// The nodes between dots.
    pub nodes: Vec<PathNode>,
    /// `;k=v` tags of a tagged series name (`a.b;env=prod`), in written order.
    pub tags: Vec<(String, String)>,
}

impl PathExpr {
    /// Whether no node has a wildcard, alternative or variable: the path names one series.
    pub fn is_literal(&self) -> bool {
        self.nodes.iter().all(PathNode::is_literal)
    }
}

/// One node of a path: a sequence of literal text, wildcards and template variables.
#[derive(Debug, Clone, PartialEq)]
pub struct PathNode {
    /// The node's text as written.
    pub raw: String,
    /// The parts in order.
    pub parts: Vec<Part>,
}

impl PathNode {
    /// Whether the node is plain text.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Whether the node is exactly `*`.
    pub fn is_star(&self) -> bool {
        matches!(self.parts.as_slice(), [Part::Star])
    }
}

/// A piece of a [`PathNode`].
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Plain text.
    Literal(String),
    /// `*`: any run of characters within the node.
    Star,
    /// `?`: any one character.
    Question,
    /// `[a-z0-9]`: one character of the class (the text between the brackets).
    CharClass(String),
    /// `{a,b}`: one of the alternatives (each plain text or itself a glob).
    Alternatives(Vec<String>),
    /// A Grafana template variable.
    Variable(Variable),
}

/// A Grafana template variable in a path node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name (`host`).
    pub name: String,
    /// The format after `:` (`glob`, `regex`, …), if any.
    pub format: Option<String>,
    /// How it was written.
    pub syntax: VarSyntax,
}

/// The three ways Grafana writes a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarSyntax {
    /// `$var`
    Dollar,
    /// `${var}` / `${var:fmt}`
    Braces,
    /// `[[var]]` / `[[var:fmt]]` (deprecated in Grafana)
    Brackets,
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fmt_part = self.format.as_deref().map(|x| format!(":{x}")).unwrap_or_default();
        match self.syntax {
            VarSyntax::Dollar => write!(f, "${}", self.name),
            VarSyntax::Braces => write!(f, "${{{}{fmt_part}}}", self.name),
            VarSyntax::Brackets => write!(f, "[[{}{fmt_part}]]", self.name),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Path(p) => f.write_str(&p.raw),
            Expr::Call(c) => {
                write!(f, "{}(", c.name)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(n) = &a.name {
                        write!(f, "{n}=")?;
                    }
                    write!(f, "{}", a.value)?;
                }
                f.write_str(")")
            }
            Expr::Str(s, _) => {
                f.write_str("'")?;
                let mut chars = s.chars().peekable();
                while let Some(c) = chars.next() {
                    // a backslash is escaped only where the lexer would read it as an escape
                    let escape = c == '\''
                        || (c == '\\' && matches!(chars.peek(), None | Some('\'' | '\\')));
                    if escape {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("'")
            }
            Expr::Number(n, _) => write!(f, "{n}"),
            Expr::Bool(b, _) => write!(f, "{b}"),
            Expr::None(_) => f.write_str("None"),
            Expr::Ref(r, _) => write!(f, "#{r}"),
        }
    }
}
