//! The Graphite parser: every construct of the grammar, every error with its byte position,
//! and a round trip (parse → print → parse) over generated targets.
use dualmetrics_port::graphite::{parse, Expr, Part, VarSyntax};
use proptest::prelude::*;

/// Target in, canonical text out (pipes become nested calls, strings single-quoted).
const VALID: &[(&str, &str)] = &[
    ("a.b.c", "a.b.c"),
    ("  stats.counters.x.count  ", "stats.counters.x.count"),
    ("a.*.c", "a.*.c"),
    ("a.b?.c", "a.b?.c"),
    ("a.[a-z0-9].c", "a.[a-z0-9].c"),
    ("a.{b,c}.d", "a.{b,c}.d"),
    ("a.web-{1,2}*.d", "a.web-{1,2}*.d"),
    ("a.$host.c", "a.$host.c"),
    ("a.${host}.c", "a.${host}.c"),
    ("a.[[host]].c", "a.[[host]].c"),
    ("a.${host:glob}.c", "a.${host:glob}.c"),
    ("a.${host:regex}.c", "a.${host:regex}.c"),
    ("a.b;env=prod;dc=eu", "a.b;env=prod;dc=eu"),
    ("sumSeries(a.*)", "sumSeries(a.*)"),
    ("sumSeries(a.*, b.{x,y})", "sumSeries(a.*, b.{x,y})"),
    ("alias(a.b, \"x y\")", "alias(a.b, 'x y')"),
    (r"alias(a.b, 'it\'s')", r"alias(a.b, 'it\'s')"),
    ("scale(a.b, -0.5)", "scale(a.b, -0.5)"),
    ("scale(a.b, 1e3)", "scale(a.b, 1000)"),
    ("summarize(a.b, '1h', 'sum', true)", "summarize(a.b, '1h', 'sum', true)"),
    ("summarize(a.b, '1h', 'sum', False)", "summarize(a.b, '1h', 'sum', false)"),
    ("groupByNode(a.*.c, 1, func='sum')", "groupByNode(a.*.c, 1, func='sum')"),
    ("transformNull(a.b, None)", "transformNull(a.b, None)"),
    ("asPercent(#A, #B)", "asPercent(#A, #B)"),
    ("a.b|sumSeries()|alias('t')", "alias(sumSeries(a.b), 't')"),
    (
        "seriesByTag('name=stats.counters.k.count', 'env!=dev', 'dc=~eu.*', 'host!=~web-[0-9]')",
        "seriesByTag('name=stats.counters.k.count', 'env!=dev', 'dc=~eu.*', 'host!=~web-[0-9]')",
    ),
    (
        "aliasByNode(movingAverage(sumSeries(a.*.b), '5min'), 0, 1)",
        "aliasByNode(movingAverage(sumSeries(a.*.b), '5min'), 0, 1)",
    ),
    ("constantLine(42)", "constantLine(42)"),
];

#[test]
fn every_construct_of_the_grammar_parses_and_prints_canonically() {
    for (input, want) in VALID {
        let e = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(e.to_string(), *want, "input {input}");
        let again = parse(want).unwrap();
        assert_eq!(again.to_string(), *want, "canonical text of {input} reparses the same");
    }
}

#[test]
fn path_nodes_split_into_wildcards_classes_alternatives_and_variables() {
    let Expr::Path(p) = parse("a.web-*.[0-9]?.{x,y}.$v.${w:regex}.[[z]]").unwrap() else {
        panic!()
    };
    assert_eq!(p.nodes.len(), 7);
    assert_eq!(p.nodes[1].parts, vec![Part::Literal("web-".into()), Part::Star]);
    assert_eq!(p.nodes[2].parts, vec![Part::CharClass("0-9".into()), Part::Question]);
    assert_eq!(p.nodes[3].parts, vec![Part::Alternatives(vec!["x".into(), "y".into()])]);
    let vars: Vec<_> = p.nodes[4..]
        .iter()
        .map(|n| match &n.parts[0] {
            Part::Variable(v) => (v.name.clone(), v.format.clone(), v.syntax),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        vars,
        vec![
            ("v".into(), None, VarSyntax::Dollar),
            ("w".into(), Some("regex".into()), VarSyntax::Braces),
            ("z".into(), None, VarSyntax::Brackets),
        ]
    );
    assert!(!p.is_literal());
}

#[test]
fn dots_inside_alternatives_do_not_split_nodes() {
    let Expr::Path(p) = parse("a.{b.c,d}.e").unwrap() else { panic!() };
    assert_eq!(p.nodes.len(), 3);
}

#[test]
fn spans_point_at_calls_names_and_arguments() {
    let Expr::Call(c) = parse("alias(sumSeries(a.b), 'x')").unwrap() else { panic!() };
    assert_eq!((c.name_span.start, c.name_span.end, c.span.end), (0, 5, 26));
    let Expr::Call(inner) = &c.args[0].value else { panic!() };
    assert_eq!((inner.name_span.start, inner.span.end), (6, 20));
    assert_eq!(c.args[1].value.span().start, 22);
}

/// Bad target, byte position of the error, a phrase of the message.
const INVALID: &[(&str, usize, &str)] = &[
    ("", 0, "empty target"),
    ("sumSeries(a.b", 9, "`(` at byte 9 is never closed"),
    ("alias(sumSeries(a.b, 'x')", 5, "`(` at byte 5 is never closed"),
    ("sumSeries(a.b))", 14, "unexpected `)`"),
    ("a.b)", 3, "unexpected `)`"),
    ("sumSeries(a.b,)", 14, "empty argument before `)`"),
    ("sumSeries(,a)", 10, "empty argument before `,`"),
    ("alias(a.b, 'x)", 11, "unterminated string"),
    ("a.{b,c", 2, "unclosed `{`"),
    ("a.[0-9", 2, "unclosed `[`"),
    ("a.b}", 3, "unexpected `}`"),
    ("a..b", 2, "empty path node"),
    ("a.${x", 3, "unclosed `{`"),
    ("a.${x-y}", 2, "bad variable"),
    ("'just a string'", 0, "must be a series"),
    ("42", 0, "must be a series"),
    ("sum-series(a)", 0, "not a function name"),
    ("f(a b)", 4, "expected `,` or `)`"),
    ("f(x=1, a)", 7, "positional argument after a keyword"),
    ("(a)", 0, "without a function name"),
    ("a.b;env", 4, "not `key=value`"),
    ("a.b | c", 7, "expected `(` after `c`"),
    ("|f()", 0, "without a series"),
];

#[test]
fn errors_carry_the_byte_position_and_a_caret() {
    for (input, pos, phrase) in INVALID {
        let e = parse(input).expect_err(input);
        assert_eq!(e.pos, *pos, "position for {input:?}: {e}");
        assert!(e.message.contains(phrase), "message for {input:?}: {}", e.message);
        let shown = e.to_string();
        let caret = shown.lines().last().unwrap();
        assert_eq!(
            caret.find('^'),
            Some(2 + input[..*pos].chars().count()),
            "caret for {input:?}:\n{shown}"
        );
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_not_a_stack_overflow() {
    let deep = "f(".repeat(10_000) + "a" + &")".repeat(10_000);
    let e = parse(&deep).unwrap_err();
    assert!(e.message.contains("nesting deeper"), "{e}");
}

fn arb_node() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,6}",
        Just("*".to_owned()),
        "[a-z]{1,3}\\*",
        "[a-z]{1,3}\\?",
        Just("[0-9]".to_owned()),
        "\\{[a-z]{1,3},[a-z]{1,3}\\}",
        "\\$[a-z]{1,4}",
        "\\$\\{[a-z]{1,4}(:regex)?\\}",
        "\\[\\[[a-z]{1,4}\\]\\]",
    ]
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec(arb_node(), 1..5).prop_map(|v| v.join("."))
}

fn arb_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![arb_path(), "#[A-Z]"];
    leaf.prop_recursive(4, 24, 4, |inner| {
        let arg = prop_oneof![
            inner.clone(),
            "'[a-z0-9 ]{0,5}'",
            (-1000i32..1000).prop_map(|n| n.to_string()),
            Just("true".to_owned()),
            Just("None".to_owned()),
        ];
        ("[a-z][a-zA-Z]{0,8}", inner, prop::collection::vec(arg, 0..3)).prop_map(
            |(f, first, rest)| {
                let mut args = vec![first];
                args.extend(rest);
                format!("{f}({})", args.join(","))
            },
        )
    })
}

proptest! {
    #[test]
    fn printing_a_parsed_target_and_parsing_it_again_gives_the_same_tree(t in arb_expr()) {
        let e = parse(&t).map_err(|e| TestCaseError::fail(format!("{t}: {e}")))?;
        let printed = e.to_string();
        let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(again.to_string(), printed);
    }

    #[test]
    fn arbitrary_input_never_panics_and_errors_point_inside_the_target(s in "\\PC{0,40}") {
        if let Err(e) = parse(&s) {
            prop_assert!(e.pos <= s.len());
        }
    }
}
