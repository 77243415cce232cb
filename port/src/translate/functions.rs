//! Graphite functions → PromQL, one arm each. Every arm either gives PromQL that yields
//! Graphite's values (exact), records why it is close (approximate), or refuses
//! (untranslatable). The table tests in `tests/translate.rs` cover each arm.
use super::paths::{self, legend_of};
use super::{known, untranslatable, Fail, NodeRef, Semantics, Series, Translator};
use crate::error::TranslateError;
use crate::graphite::{Call, Expr};
use crate::promql::{self, MatchOp, Matcher};
use dualmetrics_model::naming_map::otel_label;

/// Label that tells the arguments of a multi-argument aggregation apart (`label_replace`),
/// so `or` keeps series of different arguments with equal labels.
pub const ARG_LABEL: &str = "graphite_arg";

/// Translates a call.
///
/// One arm per Graphite function (about 90), most of them a few lines: the match is the
/// translation table, kept in one place so that a function's PromQL form, its approximations and
/// its refusals are read together; arms longer than a few lines call a helper.
pub(crate) fn call(t: &mut Translator<'_>, c: &Call) -> Result<Series, Fail> {
    if !known::is_known(&c.name) {
        return Err(Fail::Error(TranslateError::UnknownFunction {
            name: c.name.clone(),
            pos: c.name_span.start,
            target: t.src.clone(),
        }));
    }
    let name = c.name.as_str();
    match name {
        "seriesByTag" => paths::series_by_tag(t, c),
        "sumSeries" | "sum" => aggregate(t, c, "sum"),
        "averageSeries" | "avg" => aggregate(t, c, "avg"),
        "maxSeries" | "max" => aggregate(t, c, "max"),
        "minSeries" | "min" => aggregate(t, c, "min"),
        "countSeries" => aggregate(t, c, "count"),
        "stddevSeries" => aggregate(t, c, "stddev"),
        "rangeOfSeries" => aggregate(t, c, "range"),
        "aggregate" => {
            let func = str_arg(t, c, 1, "func")?.unwrap_or_else(|| "sum".into());
            let list = vec![series_arg(t, c, 0)?];
            aggregate_list(t, c, &func, list)
        }
        "group" => {
            let list = series_args(t, c, 0)?;
            Ok(union(list))
        }
        "multiplySeries" => {
            let list = series_args(t, c, 0)?;
            if list.iter().all(|s| s.single) {
                let expr =
                    list.iter().map(|s| format!("sum({})", s.expr)).collect::<Vec<_>>().join(" * ");
                Ok(combined(
                    c,
                    expr,
                    Semantics::Derived { by: "multiplySeries".into(), of: Box::new(mixed(&list)) },
                ))
            } else {
                Err(untranslatable(name, "PromQL has no product aggregation across a series list; each argument must be one series"))
            }
        }
        "diffSeries" => {
            let list = series_args(t, c, 0)?;
            let (first, rest) = list
                .split_first()
                .ok_or_else(|| bad(t, c, c.span.start, "needs at least one series"))?;
            if !first.single {
                return Err(untranslatable(name, "the first argument matches several series: Graphite subtracts from the first in name order, which PromQL cannot pick"));
            }
            let mut expr = format!("sum({})", first.expr);
            if !rest.is_empty() {
                let u = union(rest.to_vec());
                expr = format!("{expr} - (sum({}) or vector(0))", u.expr);
            }
            Ok(combined(
                c,
                expr,
                Semantics::Derived { by: "diffSeries".into(), of: Box::new(mixed(&list)) },
            ))
        }
        "sumSeriesWithWildcards"
        | "averageSeriesWithWildcards"
        | "multiplySeriesWithWildcards"
        | "aggregateWithWildcards" => {
            let s = series_arg(t, c, 0)?;
            let (func, from) = match name {
                "sumSeriesWithWildcards" => ("sum".to_owned(), 1),
                "averageSeriesWithWildcards" => ("avg".to_owned(), 1),
                "multiplySeriesWithWildcards" => ("multiply".to_owned(), 1),
                _ => (str_arg(t, c, 1, "func")?.unwrap_or_else(|| "sum".into()), 2),
            };
            let positions = int_args(t, c, from)?;
            let drop: Vec<usize> = positions.iter().filter_map(|&p| node_index(&s, p)).collect();
            let kept: Vec<NodeRef> = s
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, n)| n.clone())
                .collect();
            group_by(t, c, &s, &func, kept)
        }
        "groupByNode" => {
            let s = series_arg(t, c, 0)?;
            let n = num_arg(t, c, 1, "nodeNum")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a node number"))?;
            let func = str_arg(t, c, 2, "callback")?.unwrap_or_else(|| "average".into());
            let kept = vec![node_ref(t, c, &s, n as i64)?];
            group_by(t, c, &s, &func, kept)
        }
        "groupByNodes" => {
            let s = series_arg(t, c, 0)?;
            let func = str_arg(t, c, 1, "callback")?.unwrap_or_else(|| "average".into());
            let mut kept = Vec::new();
            for p in int_args(t, c, 2)? {
                kept.push(node_ref(t, c, &s, p)?);
            }
            group_by(t, c, &s, &func, kept)
        }
        "groupByTags" => {
            let s = series_arg(t, c, 0)?;
            let func = str_arg(t, c, 1, "callback")?.unwrap_or_else(|| "average".into());
            let mut kept = Vec::new();
            for tag in str_args(c, 2) {
                if tag == "name" {
                    if s.nodes.iter().any(|n| !matches!(n, NodeRef::Literal(_))) {
                        return Err(untranslatable(
                            name,
                            "grouping by the Graphite name of series with different names",
                        ));
                    }
                    continue;
                }
                kept.push(NodeRef::Label(otel_label(&tag, t.ctx.prometheus_naming)));
            }
            let mut out = group_by(t, c, &s, &func, kept.clone())?;
            let name_part = legend_of(&s.nodes, &[]).unwrap_or_default();
            let tags: String = kept
                .iter()
                .filter_map(|k| match k {
                    NodeRef::Label(l) => Some(format!(";{l}={{{{{l}}}}}")),
                    _ => None,
                })
                .collect();
            out.legend = Some(format!("{name_part}{tags}"));
            Ok(out)
        }
        "aliasByNode" | "aliasByMetric" => {
            let s = series_arg(t, c, 0)?;
            let positions = if name == "aliasByMetric" { vec![-1] } else { int_args(t, c, 1)? };
            let mut refs = Vec::new();
            for p in positions {
                refs.push(node_ref(t, c, &s, p)?);
            }
            let legend =
                legend_of(&refs, &[]).ok_or_else(|| untranslatable(name, name_node_why()))?;
            Ok(Series { legend: Some(legend), nodes: refs, ..s })
        }
        "aliasByTags" => {
            let s = series_arg(t, c, 0)?;
            let mut refs = Vec::new();
            for a in c.args.iter().skip(1) {
                match &a.value {
                    Expr::Number(n, _) => refs.push(node_ref(t, c, &s, *n as i64)?),
                    Expr::Str(tag, _) if tag == "name" => {
                        let l = legend_of(&s.nodes, &[])
                            .ok_or_else(|| untranslatable(name, name_node_why()))?;
                        refs.push(NodeRef::Literal(l));
                    }
                    Expr::Str(tag, _) => {
                        refs.push(NodeRef::Label(otel_label(tag, t.ctx.prometheus_naming)))
                    }
                    other => {
                        return Err(bad(
                            t,
                            c,
                            other.span().start,
                            "expects node numbers or tag names",
                        ))
                    }
                }
            }
            let legend =
                legend_of(&refs, &[]).ok_or_else(|| untranslatable(name, name_node_why()))?;
            Ok(Series { legend: Some(legend), nodes: refs, ..s })
        }
        "alias" => {
            let s = series_arg(t, c, 0)?;
            let a = str_arg(t, c, 1, "newName")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a name"))?;
            let nodes = a.split('.').map(|x| NodeRef::Literal(x.to_owned())).collect();
            Ok(Series { legend: Some(a), nodes, ..s })
        }
        "aliasSub" => {
            let s = series_arg(t, c, 0)?;
            let search = str_arg(t, c, 1, "search")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a search regex"))?;
            let replace = str_arg(t, c, 2, "replace")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a replacement"))?;
            let re = regex::Regex::new(&search)
                .map_err(|e| bad(t, c, arg_pos(c, 1), &format!("bad regex: {e}")))?;
            match &s.legend {
                Some(l) if !l.contains("{{") => {
                    let rust_replace = python_replacement(&replace);
                    let legend = re.replace_all(l, rust_replace.as_str()).into_owned();
                    Ok(Series { legend: Some(legend), ..s })
                }
                _ => Err(untranslatable(name, "the series names come from label values, and a Grafana legend cannot apply a regex to them")),
            }
        }
        "legendValue" => {
            let s = series_arg(t, c, 0)?;
            let kinds = str_args(c, 1);
            t.note(format!(
                "legendValue({}) is not part of the query: set the panel's legend values (Legend → Values: {})",
                kinds.join(", "),
                kinds.join(", ")
            ));
            Ok(s)
        }
        "scale" => {
            let s = series_arg(t, c, 0)?;
            let f = num_arg(t, c, 1, "factor")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a factor"))?;
            Ok(derived(
                &s,
                format!("{} * {}", s.wrapped(), promql::number(f)),
                false,
                &format!("scale({})", promql::number(f)),
            ))
        }
        "scaleToSeconds" => {
            let s = series_arg(t, c, 0)?;
            let secs = num_arg(t, c, 1, "seconds")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs seconds"))?;
            let f = t.flush();
            t.note(format!(
                "scaleToSeconds multiplies by seconds / Graphite's step; the step is taken as the flush interval ({}s), as it is before any rollup",
                promql::number(f)
            ));
            let sem = match s.sem {
                Semantics::CountPerInterval { .. } => Semantics::CountPerInterval { seconds: secs },
                Semantics::SumPerInterval { .. } => Semantics::SumPerInterval { seconds: secs },
                ref other => Semantics::Derived {
                    by: format!("scaleToSeconds({})", promql::number(secs)),
                    of: Box::new(other.clone()),
                },
            };
            let expr = format!("{} * {}", s.wrapped(), promql::number(secs / f));
            Ok(Series { sem, ..s.with(expr, false, Semantics::Mixed) })
        }
        "offset" => {
            let s = series_arg(t, c, 0)?;
            let n = num_arg(t, c, 1, "factor")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs an amount"))?;
            Ok(derived(
                &s,
                format!("{} + {}", s.wrapped(), promql::number(n)),
                false,
                &format!("offset({})", promql::number(n)),
            ))
        }
        "absolute" => simple_fn(t, c, "abs"),
        "squareRoot" => simple_fn(t, c, "sqrt"),
        "invert" => {
            let s = series_arg(t, c, 0)?;
            Ok(derived(&s, format!("1 / {}", s.wrapped()), false, "invert"))
        }
        "pow" => {
            let s = series_arg(t, c, 0)?;
            let n = num_arg(t, c, 1, "factor")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs an exponent"))?;
            Ok(derived(&s, format!("{} ^ {}", s.wrapped(), promql::number(n)), false, "pow"))
        }
        "logarithm" => {
            let s = series_arg(t, c, 0)?;
            let base = num_arg(t, c, 1, "base")?.unwrap_or(10.0);
            let expr = match base {
                10.0 => format!("log10({})", s.expr),
                2.0 => format!("log2({})", s.expr),
                b => format!("ln({}) / {}", s.expr, promql::number(b.ln())),
            };
            Ok(derived(&s, expr, base == 10.0 || base == 2.0, "logarithm"))
        }
        "perSecond" => {
            let s = series_arg(t, c, 0)?;
            t.approx("perSecond becomes rate(): a decrease counts as a counter reset, where Graphite's perSecond leaves a gap");
            let ri = t.ctx.rate_interval.clone();
            Ok(derived(&s, format!("rate({})", t.range_of(&s, &ri)), true, "perSecond"))
        }
        "nonNegativeDerivative" => {
            let s = series_arg(t, c, 0)?;
            t.approx("nonNegativeDerivative (the difference per Graphite step) becomes rate() × the flush interval: an average over $__rate_interval, and a decrease counts as a counter reset instead of a gap");
            let ri = t.ctx.rate_interval.clone();
            let expr = format!("rate({}) * {}", t.range_of(&s, &ri), promql::number(t.flush()));
            Ok(derived(&s, expr, false, "nonNegativeDerivative"))
        }
        "derivative" => {
            let s = series_arg(t, c, 0)?;
            t.approx("derivative (the difference per Graphite step) becomes deriv() × the flush interval: a least-squares slope over $__rate_interval");
            let ri = t.ctx.rate_interval.clone();
            let expr = format!("deriv({}) * {}", t.range_of(&s, &ri), promql::number(t.flush()));
            Ok(derived(&s, expr, false, "derivative"))
        }
        "integral" => {
            let s = series_arg(t, c, 0)?;
            let Some(total) = s.counter_total.clone() else {
                return Err(untranslatable(name, "PromQL has no running sum from the start of the range, except over a counter's cumulative total (integral of a StatsD `.count`)"));
            };
            t.approx("integral of a StatsD count becomes the counter's total minus its value at the start of the range: a counter reset (a restart of the emitting process) breaks it");
            Ok(derived(&s, format!("{total} - {total} @ start()"), false, "integral"))
        }
        "summarize" | "hitcount" => summarize(t, c),
        "movingAverage" | "movingSum" | "movingMax" | "movingMin" | "movingMedian"
        | "movingWindow" => moving(t, c),
        "timeShift" => {
            let shift = str_arg(t, c, 1, "timeShift")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a time shift"))?;
            let (sign, text) = match shift.strip_prefix('+') {
                Some(rest) => (-1.0, rest),
                None => (1.0, shift.strip_prefix('-').unwrap_or(&shift)),
            };
            let secs = interval(text).ok_or_else(|| {
                bad(t, c, arg_pos(c, 1), &format!("`{shift}` is not a time interval"))
            })?;
            let saved = t.offset.clone();
            let total = sign * secs + saved.as_deref().map_or(0.0, parse_offset);
            t.offset = Some(render_offset(total));
            let r = series_arg(t, c, 0);
            t.offset = saved;
            let s = r?;
            Ok(Series { selector: None, counter_total: None, ..s })
        }
        "keepLastValue" => {
            let s = series_arg(t, c, 0)?;
            let limit = num_arg(t, c, 1, "limit")?;
            let f = t.flush();
            let w = match limit {
                None => 300.0,
                Some(n) => valid_window(n * f).ok_or_else(|| {
                    bad(
                        t,
                        c,
                        arg_pos(c, 1),
                        "limit must be a positive number of points (at most 10 years)",
                    )
                })?,
            };
            t.approx(format!(
                "keepLastValue becomes last_over_time over {}: it fills gaps up to that long{}",
                promql::duration(w),
                if limit.is_some() { "" } else { " (Graphite fills without limit)" }
            ));
            let expr = format!(
                "last_over_time({}[{}:{}])",
                s.wrapped(),
                promql::duration(w),
                promql::duration(f)
            );
            Ok(s.with(expr, true, s.sem.clone()))
        }
        "transformNull" => {
            let s = series_arg(t, c, 0)?;
            let v = num_arg(t, c, 1, "default")?.unwrap_or(0.0);
            if !s.single {
                t.approx("transformNull over several series fills only when every series is missing (PromQL has no per-series gap to fill)");
            }
            Ok(s.with(
                format!("{} or vector({})", s.wrapped(), promql::number(v)),
                false,
                s.sem.clone(),
            ))
        }
        "removeBelowValue" | "removeAboveValue" => {
            let s = series_arg(t, c, 0)?;
            let n =
                num_arg(t, c, 1, "n")?.ok_or_else(|| bad(t, c, c.span.start, "needs a value"))?;
            let op = if name == "removeBelowValue" { ">=" } else { "<=" };
            Ok(s.with(format!("{} {op} {}", s.wrapped(), promql::number(n)), false, s.sem.clone()))
        }
        "removeEmptySeries" => series_arg(t, c, 0),
        "highestCurrent" | "highestMax" | "highestAverage" | "highest" | "lowestCurrent"
        | "lowestAverage" | "lowest" | "limit" => {
            let s = series_arg(t, c, 0)?;
            let n = num_arg(t, c, 1, "n")?.unwrap_or(1.0);
            let op = if name.starts_with("lowest") { "bottomk" } else { "topk" };
            if name == "limit" {
                t.approx("PromQL has no series order: limit(n) becomes topk(n), the n largest at each step");
            } else {
                t.approx(format!("{op}() picks the n series at every step; Graphite's {name} picks n series once, over the whole range"));
            }
            Ok(s.with(format!("{op}({}, {})", promql::number(n), s.expr), true, s.sem.clone()))
        }
        "sortByMaxima" | "sortByMinima" | "sortByTotal" | "sortByName" | "sortBy" => {
            let s = series_arg(t, c, 0)?;
            t.note(format!("{name} orders series only: set the panel's legend sort instead"));
            Ok(s)
        }
        "asPercent" | "pct" => as_percent(t, c),
        "divideSeries" => {
            let a = series_arg(t, c, 0)?;
            let b = series_arg(t, c, 1)?;
            if !b.single {
                return Err(untranslatable(
                    name,
                    "the divisor matches several series (Graphite rejects that too)",
                ));
            }
            let expr = format!("{} / on() group_left() sum({})", a.wrapped(), b.expr);
            Ok(Series { legend: a.legend.clone(), ..a.with(expr, false, Semantics::Ratio) })
        }
        "divideSeriesLists" => {
            let a = series_arg(t, c, 0)?;
            let b = series_arg(t, c, 1)?;
            if a.single && b.single {
                return Ok(Series {
                    legend: a.legend.clone(),
                    ..a.with(format!("sum({}) / sum({})", a.expr, b.expr), false, Semantics::Ratio)
                });
            }
            t.approx("divideSeriesLists pairs the two lists by position (sorted names); PromQL pairs series with equal labels");
            Ok(a.with(format!("{} / {}", a.wrapped(), b.wrapped()), false, Semantics::Ratio))
        }
        "exclude" | "grep" => filter(t, c),
        "consolidateBy" => {
            let s = series_arg(t, c, 0)?;
            let f = str_arg(t, c, 1, "consolidationFunc")?.unwrap_or_default();
            t.approx(format!(
                "Graphite's consolidation differs: consolidateBy('{f}') chooses how points merge when a panel has more points than pixels; PromQL evaluates at each step and does not merge"
            ));
            Ok(s)
        }
        "constantLine" => {
            let v = num_arg(t, c, 0, "value")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a value"))?;
            let mut s = combined(c, format!("vector({})", promql::number(v)), Semantics::Constant);
            s.atom = true;
            s.legend = Some(promql::number(v));
            Ok(s)
        }
        "threshold" => {
            let v = num_arg(t, c, 0, "value")?
                .ok_or_else(|| bad(t, c, c.span.start, "needs a value"))?;
            let label = str_arg(t, c, 1, "label")?;
            if let Some(color) = str_arg(t, c, 2, "color")? {
                t.note(format!(
                    "threshold color `{color}` becomes a panel override (series color)"
                ));
            }
            let mut s = combined(c, format!("vector({})", promql::number(v)), Semantics::Constant);
            s.atom = true;
            s.legend = Some(label.unwrap_or_else(|| promql::number(v)));
            Ok(s)
        }
        other => Err(untranslatable(
            other,
            "no PromQL translation is implemented for this Graphite function",
        )),
    }
}

fn name_node_why() -> &'static str {
    "the node is part of the Prometheus metric name, which rate() and aggregations drop; a mapping rule that turns the node into a label makes it translatable"
}

fn bad(t: &Translator<'_>, c: &Call, pos: usize, message: &str) -> Fail {
    Fail::Error(TranslateError::BadArgument {
        function: c.name.clone(),
        message: message.to_owned(),
        pos,
        target: t.src.clone(),
    })
}

fn arg_pos(c: &Call, i: usize) -> usize {
    c.args.get(i).map_or(c.span.start, |a| a.value.span().start)
}

/// Positional argument `i`, or the keyword argument `kw`.
fn arg<'c>(c: &'c Call, i: usize, kw: &str) -> Option<&'c Expr> {
    c.args
        .iter()
        .find(|a| a.name.as_deref() == Some(kw))
        .map(|a| &a.value)
        .or_else(|| c.args.get(i).filter(|a| a.name.is_none()).map(|a| &a.value))
}

fn series_arg(t: &mut Translator<'_>, c: &Call, i: usize) -> Result<Series, Fail> {
    match c.args.get(i) {
        Some(a) if a.value.is_series() => t.series(&a.value),
        Some(a) => Err(bad(
            t,
            c,
            a.value.span().start,
            &format!("argument {} must be a series, found `{}`", i + 1, a.value),
        )),
        None => Err(bad(
            t,
            c,
            c.span.end.saturating_sub(1),
            &format!("missing series argument {}", i + 1),
        )),
    }
}

fn series_args(t: &mut Translator<'_>, c: &Call, from: usize) -> Result<Vec<Series>, Fail> {
    let mut out = Vec::new();
    for a in c.args.iter().skip(from).filter(|a| a.name.is_none()) {
        if !a.value.is_series() {
            return Err(bad(
                t,
                c,
                a.value.span().start,
                &format!("expects series, found `{}`", a.value),
            ));
        }
        out.push(t.series(&a.value)?);
    }
    if out.is_empty() {
        return Err(bad(t, c, c.span.start, "needs at least one series"));
    }
    Ok(out)
}

fn num_arg(t: &Translator<'_>, c: &Call, i: usize, kw: &str) -> Result<Option<f64>, Fail> {
    match arg(c, i, kw) {
        None | Some(Expr::None(_)) => Ok(None),
        Some(Expr::Number(n, _)) => Ok(Some(*n)),
        Some(Expr::Str(s, sp)) => {
            s.parse().map(Some).map_err(|_| bad(t, c, sp.start, &format!("`{s}` is not a number")))
        }
        Some(other) => {
            Err(bad(t, c, other.span().start, &format!("expects a number, found `{other}`")))
        }
    }
}

fn str_arg(t: &Translator<'_>, c: &Call, i: usize, kw: &str) -> Result<Option<String>, Fail> {
    match arg(c, i, kw) {
        None | Some(Expr::None(_)) => Ok(None),
        Some(Expr::Str(s, _)) => Ok(Some(s.clone())),
        Some(Expr::Number(n, _)) => Ok(Some(promql::number(*n))),
        Some(Expr::Bool(b, _)) => Ok(Some(b.to_string())),
        Some(other) => {
            Err(bad(t, c, other.span().start, &format!("expects a string, found `{other}`")))
        }
    }
}

fn bool_arg(t: &Translator<'_>, c: &Call, i: usize, kw: &str) -> Result<bool, Fail> {
    match arg(c, i, kw) {
        None | Some(Expr::None(_)) => Ok(false),
        Some(Expr::Bool(b, _)) => Ok(*b),
        Some(Expr::Number(n, _)) => Ok(*n != 0.0),
        Some(other) => {
            Err(bad(t, c, other.span().start, &format!("expects true or false, found `{other}`")))
        }
    }
}

fn str_args(c: &Call, from: usize) -> Vec<String> {
    c.args
        .iter()
        .skip(from)
        .filter_map(|a| match &a.value {
            Expr::Str(s, _) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn int_args(t: &Translator<'_>, c: &Call, from: usize) -> Result<Vec<i64>, Fail> {
    let mut out = Vec::new();
    for a in c.args.iter().skip(from) {
        match &a.value {
            Expr::Number(n, _) if n.fract() == 0.0 => out.push(*n as i64),
            Expr::Str(s, sp) => out.push(
                s.parse()
                    .map_err(|_| bad(t, c, sp.start, &format!("`{s}` is not a node number")))?,
            ),
            other => {
                return Err(bad(
                    t,
                    c,
                    other.span().start,
                    &format!("expects node numbers, found `{other}`"),
                ))
            }
        }
    }
    Ok(out)
}

fn node_index(s: &Series, p: i64) -> Option<usize> {
    let len = s.nodes.len() as i64;
    let i = if p < 0 { len + p } else { p };
    (0..len).contains(&i).then_some(i as usize)
}

fn node_ref(t: &Translator<'_>, c: &Call, s: &Series, p: i64) -> Result<NodeRef, Fail> {
    let Some(i) = node_index(s, p) else {
        if s.nodes.is_empty() {
            return Err(untranslatable(&c.name, "the series name is computed (e.g. `sumSeries(…)`), so it has no path nodes to pick"));
        }
        return Err(bad(
            t,
            c,
            c.span.start,
            &format!("node {p} is outside the path's {} nodes", s.nodes.len()),
        ));
    };
    Ok(s.nodes[i].clone())
}

fn mixed(list: &[Series]) -> Semantics {
    match list.split_first() {
        Some((f, rest)) if rest.iter().all(|s| s.sem == f.sem) => f.sem.clone(),
        _ => Semantics::Mixed,
    }
}

fn common_unit(list: &[Series]) -> Option<String> {
    let u = list.first()?.unit.clone();
    list.iter().all(|s| s.unit == u).then_some(u).flatten()
}

/// The union of several argument lists: `label_replace` tags each argument so `or` keeps
/// them all; one argument is returned as it is.
fn union(mut list: Vec<Series>) -> Series {
    if list.len() == 1 {
        return list.remove(0);
    }
    let parts: Vec<String> = list
        .iter()
        .enumerate()
        .map(|(i, s)| format!("label_replace({}, \"{ARG_LABEL}\", \"{i}\", \"\", \"\")", s.expr))
        .collect();
    let sem = mixed(&list);
    let unit = common_unit(&list);
    let first = list.remove(0);
    Series { unit, single: false, legend: None, ..first.with(parts.join(" or "), false, sem) }
}

/// A single series computed by `c` (Graphite names it by the call's text).
fn combined(c: &Call, expr: String, sem: Semantics) -> Series {
    Series {
        expr,
        atom: false,
        selector: None,
        counter_total: None,
        sem,
        unit: None,
        nodes: Vec::new(),
        labels: Vec::new(),
        single: true,
        legend: Some(Expr::Call(c.clone()).to_string()),
    }
}

fn derived(s: &Series, expr: String, atom: bool, by: &str) -> Series {
    s.with(expr, atom, Semantics::Derived { by: by.to_owned(), of: Box::new(s.sem.clone()) })
}

fn simple_fn(t: &mut Translator<'_>, c: &Call, f: &str) -> Result<Series, Fail> {
    let s = series_arg(t, c, 0)?;
    Ok(derived(&s, format!("{f}({})", s.expr), true, &c.name))
}

/// PromQL for a Graphite aggregation callback, grouped `by` labels.
fn agg_expr(func: &str, by: &[String], inner: &str) -> Option<(String, bool, String)> {
    let by = if by.is_empty() { String::new() } else { format!(" by ({}) ", by.join(", ")) };
    let simple = |op: &str| Some((format!("{op}{by}({inner})"), true, op.to_owned()));
    match func {
        "sum" | "total" => simple("sum"),
        "avg" | "average" => simple("avg"),
        "max" => simple("max"),
        "min" => simple("min"),
        "count" => simple("count"),
        "stddev" => simple("stddev"),
        "median" => Some((format!("quantile{by}(0.5, {inner})"), true, "median".into())),
        "range" | "rangeOf" => {
            Some((format!("max{by}({inner}) - min{by}({inner})"), false, "range".into()))
        }
        _ => None,
    }
}

fn aggregate(t: &mut Translator<'_>, c: &Call, func: &str) -> Result<Series, Fail> {
    let list = series_args(t, c, 0)?;
    aggregate_list(t, c, func, list)
}

fn aggregate_list(
    t: &mut Translator<'_>,
    c: &Call,
    func: &str,
    list: Vec<Series>,
) -> Result<Series, Fail> {
    let _ = t;
    let unit = common_unit(&list);
    let sem = mixed(&list);
    let u = union(list);
    let (expr, atom, op) = agg_expr(func, &[], &u.expr).ok_or_else(|| {
        untranslatable(
            &c.name,
            format!("the aggregation `{func}` has no PromQL aggregation operator"),
        )
    })?;
    let mut s = combined(c, expr, Semantics::Across { op, of: Box::new(sem) });
    s.atom = atom;
    s.unit = unit;
    Ok(s)
}

/// Aggregates `s` grouped by the labels of `kept` nodes; the legend names the groups.
fn group_by(
    t: &mut Translator<'_>,
    c: &Call,
    s: &Series,
    func: &str,
    kept: Vec<NodeRef>,
) -> Result<Series, Fail> {
    let _ = t;
    let mut by = Vec::new();
    for n in &kept {
        match n {
            NodeRef::Label(l) if !by.contains(l) => by.push(l.clone()),
            NodeRef::Name => return Err(untranslatable(&c.name, name_node_why())),
            _ => {}
        }
    }
    let (expr, atom, op) = agg_expr(func, &by, &s.expr).ok_or_else(|| {
        untranslatable(
            &c.name,
            format!("the aggregation `{func}` has no PromQL aggregation operator"),
        )
    })?;
    let legend = legend_of(&kept, &[]);
    Ok(Series {
        expr,
        atom,
        selector: None,
        counter_total: None,
        sem: Semantics::Across { op, of: Box::new(s.sem.clone()) },
        unit: s.unit.clone(),
        single: by.is_empty(),
        labels: by,
        nodes: kept,
        legend,
    })
}

/// A Graphite interval (`1h`, `5min`, `30s`, `1d`, `2w`) in seconds.
pub fn interval(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let secs = match unit.as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        "w" | "week" | "weeks" => 604_800.0,
        "mon" | "month" | "months" => 2_592_000.0,
        "y" | "year" | "years" => 31_536_000.0,
        _ => return None,
    };
    valid_window(n * secs)
}

/// The longest window or shift accepted (10 years); longer ones are input errors, not a
/// PromQL duration that overflows.
pub const MAX_WINDOW_SECS: f64 = 10.0 * 365.0 * 86_400.0;

/// `secs` if it is a usable PromQL duration: at least 1 ms, at most [`MAX_WINDOW_SECS`].
pub fn valid_window(secs: f64) -> Option<f64> {
    (secs.is_finite() && (0.001..=MAX_WINDOW_SECS).contains(&secs)).then_some(secs)
}

fn render_offset(secs: f64) -> String {
    if secs < 0.0 {
        format!("-{}", promql::duration(-secs))
    } else {
        promql::duration(secs)
    }
}

fn parse_offset(s: &str) -> f64 {
    let (sign, rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s),
    };
    let ms = rest.strip_suffix("ms").and_then(|n| n.parse::<f64>().ok()).map(|n| n / 1000.0);
    sign * ms.or_else(|| interval(rest)).unwrap_or(0.0)
}

fn summarize(t: &mut Translator<'_>, c: &Call) -> Result<Series, Fail> {
    let s = series_arg(t, c, 0)?;
    let text = str_arg(t, c, 1, "intervalString")?
        .ok_or_else(|| bad(t, c, c.span.start, "needs an interval"))?;
    let w = interval(&text)
        .ok_or_else(|| bad(t, c, arg_pos(c, 1), &format!("`{text}` is not a time interval")))?;
    let hit = c.name == "hitcount";
    let func = if hit {
        "sum".to_owned()
    } else {
        str_arg(t, c, 2, "func")?.unwrap_or_else(|| "sum".into())
    };
    let align = bool_arg(
        t,
        c,
        if hit { 2 } else { 3 },
        if hit { "alignToInterval" } else { "alignToFrom" },
    )?;
    let f = t.flush();
    let wd = promql::duration(w);
    t.approx(format!(
        "{}('{text}') buckets are aligned to multiples of {wd} and stamped at their start; the query looks {wd} ahead (offset -{wd}), so it equals Graphite's buckets when the panel's step (Min interval) is {wd}",
        c.name
    ));
    t.note(format!("set the panel's Min interval to {wd}"));
    if align && !hit {
        t.approx(format!("alignToFrom=true aligns buckets to the start of the range: equal only when the range starts at a multiple of {wd}"));
    }
    let sub = format!("{}[{wd}:{}] offset -{wd}", s.wrapped(), promql::duration(f));
    let (expr, op) = match func.as_str() {
        "sum" | "total" if !hit && s.counter_total.is_some() => {
            let total = s.counter_total.clone().unwrap_or_default();
            (format!("increase({total}[{wd}] offset -{wd})"), "sum")
        }
        "sum" | "total" => (format!("sum_over_time({sub})"), "sum"),
        "avg" | "average" => (format!("avg_over_time({sub})"), "avg"),
        "max" => (format!("max_over_time({sub})"), "max"),
        "min" => (format!("min_over_time({sub})"), "min"),
        "last" => (format!("last_over_time({sub})"), "last"),
        "count" => (format!("count_over_time({sub})"), "count"),
        "median" => (format!("quantile_over_time(0.5, {sub})"), "median"),
        other => {
            return Err(untranslatable(
                &c.name,
                format!("the function `{other}` has no *_over_time equivalent"),
            ))
        }
    };
    let (expr, atom) =
        if hit { (format!("{expr} * {}", promql::number(f)), false) } else { (expr, true) };
    let sem = Semantics::OverTime {
        op: if hit { "hitcount".into() } else { op.into() },
        seconds: w,
        of: Box::new(s.sem.clone()),
    };
    Ok(s.with(expr, atom, sem))
}

fn moving(t: &mut Translator<'_>, c: &Call) -> Result<Series, Fail> {
    let s = series_arg(t, c, 0)?;
    let f = t.flush();
    let (w, points) = match arg(c, 1, "windowSize") {
        Some(Expr::Number(n, sp)) if *n > 0.0 => (
            valid_window(n * f)
                .ok_or_else(|| bad(t, c, sp.start, "the window is longer than 10 years"))?,
            Some(*n),
        ),
        Some(Expr::Str(text, sp)) => (
            interval(text)
                .ok_or_else(|| bad(t, c, sp.start, &format!("`{text}` is not a time interval")))?,
            None,
        ),
        Some(other) => {
            return Err(bad(
                t,
                c,
                other.span().start,
                "expects a number of points or a time interval",
            ))
        }
        None => return Err(bad(t, c, c.span.start, "needs a window")),
    };
    let func = match c.name.as_str() {
        "movingAverage" => "avg".to_owned(),
        "movingSum" => "sum".to_owned(),
        "movingMax" => "max".to_owned(),
        "movingMin" => "min".to_owned(),
        "movingMedian" => "median".to_owned(),
        _ => str_arg(t, c, 2, "func")?.unwrap_or_else(|| "average".into()),
    };
    let wd = promql::duration(w);
    let fd = promql::duration(f);
    match points {
        Some(n) => t.approx(format!(
            "{} over {} points becomes a {wd} window at a {fd} step (the flush interval); it differs when Graphite consolidates points",
            c.name,
            promql::number(n)
        )),
        None => t.approx(format!(
            "{}('{wd}'): PromQL's window [t-{wd}, t] includes both ends, so it can hold one point more than Graphite's",
            c.name
        )),
    }
    let sub = format!("{}[{wd}:{fd}]", s.wrapped());
    let (expr, op) = match func.as_str() {
        "avg" | "average" => (format!("avg_over_time({sub})"), "avg"),
        "sum" | "total" => (format!("sum_over_time({sub})"), "sum"),
        "max" => (format!("max_over_time({sub})"), "max"),
        "min" => (format!("min_over_time({sub})"), "min"),
        "median" => (format!("quantile_over_time(0.5, {sub})"), "median"),
        "last" => (format!("last_over_time({sub})"), "last"),
        other => {
            return Err(untranslatable(
                &c.name,
                format!("the function `{other}` has no *_over_time equivalent"),
            ))
        }
    };
    Ok(s.with(
        expr,
        true,
        Semantics::OverTime { op: op.into(), seconds: w, of: Box::new(s.sem.clone()) },
    ))
}

fn as_percent(t: &mut Translator<'_>, c: &Call) -> Result<Series, Fail> {
    let s = series_arg(t, c, 0)?;
    if c.args.len() > 2 {
        return Err(untranslatable(
            &c.name,
            "asPercent with nodes matches totals to series by node values",
        ));
    }
    let expr = match arg(c, 1, "total") {
        None | Some(Expr::None(_)) => {
            format!("100 * {} / on() group_left() sum({})", s.wrapped(), s.expr)
        }
        Some(Expr::Number(n, _)) => format!("100 * {} / {}", s.wrapped(), promql::number(*n)),
        Some(e) if e.is_series() => {
            let total = t.series(e)?;
            if !total.single {
                return Err(untranslatable(
                    &c.name,
                    "a list of totals is matched to the series by position, which PromQL cannot do",
                ));
            }
            format!("100 * {} / on() group_left() sum({})", s.wrapped(), total.expr)
        }
        Some(other) => {
            return Err(bad(t, c, other.span().start, "total must be a number or a series"))
        }
    };
    Ok(s.with(expr, false, Semantics::Percent))
}

/// `exclude` / `grep`: a regex on the series name, applied to the one wildcard node's label.
fn filter(t: &mut Translator<'_>, c: &Call) -> Result<Series, Fail> {
    let pattern =
        str_arg(t, c, 1, "pattern")?.ok_or_else(|| bad(t, c, c.span.start, "needs a pattern"))?;
    regex::Regex::new(&pattern)
        .map_err(|e| bad(t, c, arg_pos(c, 1), &format!("bad regex: {e}")))?;
    let Some(Expr::Path(p)) = arg(c, 0, "seriesList") else {
        return Err(untranslatable(&c.name, "filtering by name works on a metric path argument only; the names of computed series are not labels"));
    };
    let plain = paths::path(t, p, &[])?;
    let varying: Vec<&NodeRef> =
        plain.nodes.iter().filter(|n| !matches!(n, NodeRef::Literal(_))).collect();
    let label = match varying.as_slice() {
        [NodeRef::Label(l)] => l.clone(),
        [NodeRef::Name] => "__name__".to_owned(),
        [] => return Ok(plain),
        _ => return Err(untranslatable(&c.name, "the path has several wildcard nodes: the regex on the whole Graphite name cannot be split among labels")),
    };
    t.approx(format!(
        "{}'s regex runs on the whole Graphite name; here it runs on `{label}` (the only wildcard node)",
        c.name
    ));
    let op = if c.name == "exclude" { MatchOp::NotRe } else { MatchOp::Re };
    paths::path(t, p, &[Matcher::new(label, op, format!(".*(?:{pattern}).*"))])
}

/// Python's `\1` in a replacement → the regex crate's `${1}`.
fn python_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}
