//! Table-driven tests, most cases from `statsd_exporter`'s README and `pkg/mapper` tests.
use super::*;

fn file(yaml: &str) -> MappingFile {
    MappingFile::parse(yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"))
}

/// `(key, type, expected)`: `Some((name, labels))`, or `None` for unmapped.
type Case<'a> = (&'a str, MetricType, Option<(&'a str, &'a [(&'a str, &'a str)])>);

fn check(f: &MappingFile, cases: &[Case<'_>]) {
    for (key, ty, want) in cases {
        let got = f.map(key, *ty);
        match (want, &got) {
            (None, Mapped::Unmapped) => {}
            (Some((name, labels)), Mapped::Metric(m)) => {
                assert_eq!(m.name, *name, "{key}");
                let want: Vec<(String, String)> =
                    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                assert_eq!(m.labels, want, "{key}");
            }
            _ => panic!("{key}: want {want:?}, got {got:?}"),
        }
    }
}

const C: MetricType = MetricType::Counter;
const G: MetricType = MetricType::Gauge;
const O: MetricType = MetricType::Observer;

#[test]
fn readme_glob_example_maps_components_to_labels_and_leaves_others_unmapped() {
    let f = file(
        r#"
mappings:
- match: test.dispatcher.*.*.*
  name: "dispatcher_events_total"
  labels:
    processor: "$1"
    action: "$2"
    outcome: "$3"
    job: "test_dispatcher"
- match: "*.signup.*.*"
  name: "signup_events_total"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
"#,
    );
    check(
        &f,
        &[
            (
                "test.dispatcher.FooProcessor.send.success",
                C,
                Some((
                    "dispatcher_events_total",
                    &[
                        ("processor", "FooProcessor"),
                        ("action", "send"),
                        ("outcome", "success"),
                        ("job", "test_dispatcher"),
                    ],
                )),
            ),
            (
                "foo_product.signup.facebook.failure",
                C,
                Some((
                    "signup_events_total",
                    &[
                        ("provider", "facebook"),
                        ("outcome", "failure"),
                        ("job", "foo_product_server"),
                    ],
                )),
            ),
            ("test.web-server.foo.bar", C, None),
            // a component count that differs never matches
            ("test.dispatcher.FooProcessor.send", C, None),
            ("test.dispatcher.a.b.c.d", C, None),
        ],
    );
}

#[test]
fn captures_expand_in_the_name_for_glob_and_regex_alike() {
    let glob = file("mappings:\n- match: test.*.*.counter\n  name: \"${2}_total\"\n  labels:\n    provider: \"$1\"\n");
    let regex = file(
        "mappings:\n- match: 'test\\.(\\w+)\\.(\\w+)\\.counter'\n  match_type: regex\n  name: \"${2}_total\"\n  labels:\n    provider: \"$1\"\n",
    );
    for f in [glob, regex] {
        check(
            &f,
            &[("test.aws.requests.counter", C, Some(("requests_total", &[("provider", "aws")])))],
        );
    }
}

#[test]
fn readme_regex_example_with_four_captures() {
    let f = file(
        r#"
mappings:
- match: (.*)\.(.*)--(.*)\.status\.(.*)\.count
  match_type: regex
  name: "request_total"
  labels:
    hostname: "$1"
    exec: "$2"
    protocol: "$3"
    code: "$4"
"#,
    );
    check(
        &f,
        &[(
            "ip-127-0-0-1.myapp--http.status.200.count",
            C,
            Some((
                "request_total",
                &[
                    ("hostname", "ip-127-0-0-1"),
                    ("exec", "myapp"),
                    ("protocol", "http"),
                    ("code", "200"),
                ],
            )),
        )],
    );
}

#[test]
fn regex_is_unanchored_so_a_dot_rule_drops_everything_else() {
    let f = file(
        r#"
mappings:
- match: test.timing.*.*.*
  name: "my_timer"
  labels:
    provider: "$2"
    outcome: "$3"
    job: "${1}_server"
- match: .
  match_type: regex
  action: drop
  name: "dropped"
"#,
    );
    assert!(matches!(f.map("test.timing.a.b.c", O), Mapped::Metric(ref m) if m.name == "my_timer"));
    assert_eq!(f.map("anything.else", C), Mapped::Drop { rule_index: 1 });
}

#[test]
fn match_metric_type_restricts_a_rule_to_one_statsd_type() {
    let f = file(
        r#"
mappings:
- match: test.foo.*
  name: "test_foo_total"
  match_metric_type: counter
  labels: {provider: "$1"}
- match: test.foo.*
  name: "test_foo_seconds"
  match_metric_type: timer
  labels: {provider: "$1"}
"#,
    );
    check(
        &f,
        &[
            ("test.foo.a", C, Some(("test_foo_total", &[("provider", "a")]))),
            ("test.foo.a", O, Some(("test_foo_seconds", &[("provider", "a")]))),
            ("test.foo.a", G, None),
        ],
    );
    assert_eq!(MetricType::of(StatsdType::Timer), O);
    assert_eq!(MetricType::of(StatsdType::Distribution), O);
    assert_eq!(MetricType::of(StatsdType::Set), G);
}

#[test]
fn first_glob_rule_in_file_order_wins_by_default() {
    let f = file("mappings:\n- match: a.*.c\n  name: star\n- match: a.b.c\n  name: literal\n");
    check(&f, &[("a.b.c", C, Some(("star", &[]))), ("a.x.c", C, Some(("star", &[])))]);
}

#[test]
fn with_ordering_disabled_a_literal_beats_a_star_whatever_the_order() {
    // statsd_exporter's "Config with backtracking" test; its `${1}_foo` label on the rule
    // without a capture expands to "_foo" there and is a load error here, so the test uses a
    // plain label for that rule.
    let f = file(
        r#"
defaults:
  glob_disable_ordering: true
mappings:
- match: backtrack.*.bbb
  name: "testb"
  labels:
    label: "${1}_foo"
- match: backtrack.justatest.aaa
  name: "testa"
  labels:
    label: "_foo"
- match: a.*.c
  name: star
- match: a.b.c
  name: literal
"#,
    );
    check(
        &f,
        &[
            ("backtrack.good.bbb", C, Some(("testb", &[("label", "good_foo")]))),
            ("backtrack.justatest.bbb", C, Some(("testb", &[("label", "justatest_foo")]))),
            ("backtrack.justatest.aaa", C, Some(("testa", &[("label", "_foo")]))),
            ("a.b.c", C, Some(("literal", &[]))),
            ("a.x.c", C, Some(("star", &[]))),
        ],
    );
}

#[test]
fn a_glob_match_wins_over_an_earlier_regex_rule() {
    let f = file(
        "mappings:\n- match: 'a\\.(.*)'\n  match_type: regex\n  name: regex_rule\n- match: a.*\n  name: glob_rule\n",
    );
    check(&f, &[("a.b", C, Some(("glob_rule", &[]))), ("a.b.c", C, Some(("regex_rule", &[])))]);
}

#[test]
fn defaults_apply_match_type_observer_type_and_buckets() {
    let f = file(
        r#"
defaults:
  match_type: regex
  timer_type: histogram
  buckets: [.005, .01, .025]
mappings:
- match: 'x\.(\w+)'
  name: "x_$1"
- match: y.*
  match_type: glob
  observer_type: summary
  histogram_options:
    buckets: [1, 2]
  name: y
"#,
    );
    let r = f.rules();
    assert_eq!(r[0].match_type, MatchType::Regex);
    assert_eq!(r[0].observer_type, Some(ObserverType::Histogram));
    assert_eq!(r[0].buckets.as_deref(), Some(&[0.005, 0.01, 0.025][..]));
    assert_eq!(r[0].timer_buckets_ms(), Some(vec![5.0, 10.0, 25.0]));
    assert_eq!(r[1].match_type, MatchType::Glob);
    assert_eq!(r[1].observer_type, Some(ObserverType::Summary));
    assert_eq!(r[1].buckets.as_deref(), Some(&[1.0, 2.0][..]));
    check(&f, &[("x.abc", O, Some(("x_abc", &[])))]);
}

#[test]
fn no_defaults_leave_observer_type_and_buckets_to_the_reader() {
    let f = file("mappings:\n- match: a.*\n  name: a\n");
    assert_eq!(f.rules()[0].observer_type, None);
    assert_eq!(f.rules()[0].buckets, None);
    assert_eq!(f.rules()[0].action, Action::Map);
}

#[test]
fn graphite_tags_are_kept_as_labels_after_the_mapped_ones() {
    let f = file("mappings:\n- match: svc.*.requests\n  name: requests\n  labels:\n    host: $1\n");
    check(
        &f,
        &[
            (
                "svc.web-1.requests;region=eu;host=ignored",
                C,
                Some(("requests", &[("host", "web-1"), ("region", "eu")])),
            ),
            ("other;region=eu", C, None),
        ],
    );
}

#[test]
fn expanded_names_are_escaped_as_the_exporter_does() {
    let f = file("mappings:\n- match: '*.*'\n  name: \"${1}_$2\"\n");
    check(&f, &[("web-1.9x", C, Some(("web_1_9x", &[]))), ("1a.b", C, Some(("_1a_b", &[])))]);
    assert_eq!(escape_metric_name("a.b-c:d"), "a_b_c:d");
}

#[test]
fn public_fields_describe_the_rule_for_the_reverse_direction() {
    let f = file(
        "mappings:\n- match: checkout.*.*.requests\n  name: checkout_requests\n  labels:\n    env: $1\n    host: \"${2}\"\n    team: core\n",
    );
    let r = &f.rules()[0];
    assert_eq!(r.pattern, "checkout.*.*.requests");
    assert_eq!(
        r.glob_components().unwrap(),
        &[
            GlobComponent::Literal("checkout".into()),
            GlobComponent::Capture(1),
            GlobComponent::Capture(2),
            GlobComponent::Literal("requests".into()),
        ]
    );
    assert_eq!(r.capture_count(), 2);
    assert_eq!(r.name_template().as_literal().as_deref(), Some("checkout_requests"));
    let lt = r.label_templates();
    assert_eq!(lt[0].1.as_single_capture(), Some(1));
    assert_eq!(lt[1].1.as_single_capture(), Some(2));
    assert_eq!(lt[2].1.as_literal().as_deref(), Some("core"));
    assert_eq!(r.labels[2], ("team".to_owned(), "core".to_owned()));
}

#[test]
fn named_regex_groups_and_dollar_escapes_expand() {
    let f = file(
        "mappings:\n- match: '^(?P<svc>\\w+)\\.hits$'\n  match_type: regex\n  name: \"${svc}_hits\"\n  labels:\n    cost: \"$$5\"\n",
    );
    check(&f, &[("api.hits", C, Some(("api_hits", &[("cost", "$5")])))]);
}

#[test]
fn label_values_may_be_yaml_numbers_and_booleans() {
    let f = file("mappings:\n- match: a\n  name: a\n  labels:\n    code: 200\n    ok: true\n");
    check(&f, &[("a", C, Some(("a", &[("code", "200"), ("ok", "true")])))]);
}

#[test]
fn an_empty_file_maps_nothing() {
    assert_eq!(file("").map("a.b", C), Mapped::Unmapped);
    assert_eq!(file("mappings: []\n").map("a.b", C), Mapped::Unmapped);
}

/// Each bad file fails with the file, the rule index, the key and the value in the message.
#[test]
fn invalid_files_name_the_file_rule_key_and_value() {
    let cases: &[(&str, &[&str])] = &[
        (
            "mappings:\n- match: 'a(b'\n  match_type: regex\n  name: x\n",
            &["bad.yml", "mappings[0].match", "\"a(b\"", "bad regex"],
        ),
        (
            "mappings:\n- match: a.b\n  name: x\n- match: a.c\n  match_type: fuzzy\n  name: y\n",
            &["bad.yml", "mappings[1].match_type", "\"fuzzy\"", "glob or regex"],
        ),
        (
            "mappings:\n- match: a.*\n  name: x\n  labels:\n    bad-label: $1\n",
            &["mappings[0].labels.bad-label", "\"bad-label\"", "label name"],
        ),
        (
            "mappings:\n- match: a.*\n  name: x\n  labels:\n    __name__: $1\n",
            &["mappings[0].labels.__name__"],
        ),
        (
            "mappings:\n- match: a.*.*\n  name: x\n  labels:\n    l: $3\n",
            &["mappings[0].labels.l", "\"$3\"", "capture 3", "2 captures"],
        ),
        (
            "mappings:\n- match: 'a\\.(\\w+)'\n  match_type: regex\n  name: \"$1_total\"\n",
            &["mappings[0].name", "\"$1_total\"", "${1}_total"],
        ),
        ("mappings:\n- match: a.web-*.c\n  name: x\n", &["mappings[0].match", "whole component"]),
        ("mappings:\n- match: a..c\n  name: x\n", &["mappings[0].match", "empty component"]),
        ("mappings:\n- match: a.*\n  name: \"my-metric\"\n", &["mappings[0].name", "'-'"]),
        ("mappings:\n- match: a.*\n", &["mappings[0].name", "needs a name"]),
        (
            "mappings:\n- match: a.*\n  name: x\n  action: keep\n",
            &["mappings[0].action", "\"keep\""],
        ),
        (
            "mappings:\n- match: a.*\n  name: x\n  match_metric_type: histogram\n",
            &["mappings[0].match_metric_type", "\"histogram\""],
        ),
        (
            "mappings:\n- match: a.*\n  name: x\n  timer_type: sumary\n",
            &["mappings[0].timer_type", "\"sumary\""],
        ),
        (
            "mappings:\n- match: a.*\n  name: x\n  buckets: [1, 1]\n",
            &["mappings[0].buckets", "increasing"],
        ),
        ("defaults:\n  match_type: glib\nmappings: []\n", &["defaults.match_type", "\"glib\""]),
        (
            "mappings:\n- match: a.*\n  name: x\n  lables: {}\n",
            &["bad.yml", "mappings[0]", "lables"],
        ),
        ("mappings: [\n", &["bad.yml"]),
    ];
    for (yaml, needles) in cases {
        let err = MappingFile::parse(yaml, "bad.yml").expect_err(yaml).to_string();
        for n in *needles {
            assert!(err.contains(n), "{yaml:?}: error {err:?} lacks {n:?}");
        }
    }
}

#[test]
fn load_names_a_missing_file() {
    let err = MappingFile::load("/nonexistent/dir/m.yml").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/dir/m.yml"), "{err}");
}

mod reference {
    //! The glob matcher against the way `statsd_exporter` matched globs before its state machine
    //! (each pattern compiled to `^…([^.]*)…$`, rules tried in file order, first match wins),
    //! which its state machine is tested to agree with when ordering is on.
    use super::*;
    use proptest::prelude::*;

    fn reference(rules: &[String], key: &str) -> Option<(usize, Vec<String>)> {
        for (i, r) in rules.iter().enumerate() {
            let re = format!("^{}$", r.replace('.', "\\.").replace('*', "([^.]*)"));
            if let Some(c) = regex::Regex::new(&re).unwrap().captures(key) {
                let caps = c.iter().skip(1).map(|m| m.map_or("", |m| m.as_str()).to_owned());
                return Some((i, caps.collect()));
            }
        }
        None
    }

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![Just("a".to_owned()), Just("b".to_owned()), Just("*".to_owned())]
    }

    /// `glob_disable_ordering: true` as the exporter's state machine walks it: depth first over
    /// the key's components, the literal transition before `*`, the first complete match wins
    /// (rules with the same pattern: the first in the file).
    fn unordered_reference(rules: &[String], key: &str) -> Option<usize> {
        fn walk(pats: &[(usize, Vec<&str>)], key: &[&str], d: usize) -> Option<usize> {
            if pats.is_empty() {
                return None;
            }
            if d == key.len() {
                return pats.iter().map(|(i, _)| *i).min();
            }
            let lit: Vec<_> = pats.iter().filter(|(_, p)| p[d] == key[d]).cloned().collect();
            let star: Vec<_> = pats.iter().filter(|(_, p)| p[d] == "*").cloned().collect();
            walk(&lit, key, d + 1).or_else(|| walk(&star, key, d + 1))
        }
        let key: Vec<&str> = key.split('.').collect();
        let pats: Vec<(usize, Vec<&str>)> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r.split('.').collect::<Vec<_>>()))
            .filter(|(_, p)| p.len() == key.len())
            .collect();
        walk(&pats, &key, 0)
    }

    proptest! {
        #[test]
        fn unordered_glob_rules_pick_the_rule_the_exporters_state_machine_finds(
            rules in prop::collection::vec(prop::collection::vec(component(), 1..4), 1..6),
            key in prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..4),
        ) {
            let rules: Vec<String> = rules.iter().map(|r| r.join(".")).collect();
            let mut yaml = String::from("defaults:\n  glob_disable_ordering: true\nmappings:\n");
            for (i, r) in rules.iter().enumerate() {
                yaml.push_str(&format!("- match: \"{r}\"\n  name: r{i}\n"));
            }
            let f = MappingFile::parse(&yaml, "prop.yml").unwrap();
            let key = key.join(".");
            let got = match f.map(&key, MetricType::Gauge) {
                Mapped::Metric(m) => Some(m.rule_index),
                _ => None,
            };
            prop_assert_eq!(got, unordered_reference(&rules, &key));
        }

        #[test]
        fn glob_rules_map_like_the_exporters_regex_translation(
            rules in prop::collection::vec(prop::collection::vec(component(), 1..4), 1..6),
            key in prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..4),
        ) {
            let rules: Vec<String> = rules.iter().map(|r| r.join(".")).collect();
            let mut yaml = String::from("mappings:\n");
            for (i, r) in rules.iter().enumerate() {
                let n = r.matches('*').count();
                yaml.push_str(&format!("- match: \"{r}\"\n  name: r{i}\n  labels:\n"));
                for c in 1..=n {
                    yaml.push_str(&format!("    c{c}: \"${c}\"\n"));
                }
                if n == 0 {
                    yaml.push_str("    none: \"\"\n");
                }
            }
            let f = MappingFile::parse(&yaml, "prop.yml").unwrap();
            let key = key.join(".");
            let got = match f.map(&key, MetricType::Counter) {
                Mapped::Metric(m) => Some((
                    m.rule_index,
                    m.labels.iter().filter(|(k, _)| k != "none").map(|(_, v)| v.clone()).collect(),
                )),
                Mapped::Unmapped => None,
                Mapped::Drop { .. } => unreachable!(),
            };
            prop_assert_eq!(got, reference(&rules, &key));
        }
    }
}
