//! The Graphite target language, read into a tree ([`ast`]) by a pure lexer ([`lexer`]) and a
//! recursive-descent parser ([`parser`]). No I/O, no knowledge of PromQL.
//!
//! ```
//! use dualmetrics_port::graphite::{parse, Expr};
//!
//! let e = parse("aliasByNode(sumSeries(stats.counters.{web,api}.*.count), 2)").unwrap();
//! let Expr::Call(call) = e else { panic!() };
//! assert_eq!(call.name, "aliasByNode");
//! assert_eq!(call.args.len(), 2);
//!
//! let err = parse("sumSeries(a.b").unwrap_err();
//! assert_eq!(err.pos, 9); // the `(` that is never closed
//! ```
pub mod ast;
pub mod lexer;
pub mod parser;

pub use ast::{Arg, Call, Expr, Part, PathExpr, PathNode, Span, VarSyntax, Variable};
pub use parser::parse;
