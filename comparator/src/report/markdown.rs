//! Markdown report: a summary line and one table row per pair.
use std::fmt::Write;

use super::{num, Report};

/// Text as Markdown shows it literally: every character Markdown reads as syntax (emphasis,
/// code, links, images, headings, lists, tables, strikethrough) is backslash-escaped (CommonMark
/// lets any ASCII punctuation be), `<`, `>` and `&` become entities (no raw HTML, no autolink,
/// no entity reference), and line breaks become spaces (one table row).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '{' | '}' | '#' | '+' | '-' | '!'
            | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn cell(s: &str) -> String {
    escape(s)
}

/// Renders the report as GitHub-flavoured Markdown.
pub fn render(report: &Report) -> String {
    let s = report.summary();
    let mut out = String::new();
    let _ = writeln!(out, "# dualmetrics equivalence report\n");
    let _ = writeln!(
        out,
        "Legacy: {} · New: {} · range {}–{} step {} s\n",
        escape(&report.legacy_backend),
        escape(&report.new_backend),
        report.start,
        report.end,
        report.step
    );
    let _ = writeln!(
        out,
        "**{}** equivalent, **{}** divergent, **{}** missing, **{}** error\n",
        s.equivalent, s.divergent, s.missing, s.error
    );
    let _ = writeln!(out, "| pair | kind | verdict | within | max abs | max rel | explanation |");
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|");
    for p in &report.pairs {
        let o = &p.outcome;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1}% | {} | {:.2}% | {} |",
            cell(&p.name),
            p.kind.as_str(),
            o.verdict.as_str(),
            o.share_within * 100.0,
            num(o.max_abs_err),
            o.max_rel_err * 100.0,
            cell(&o.explanation)
        );
    }
    for n in &report.notes {
        let _ = writeln!(out, "\n> note: {}", cell(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_text_cannot_open_html_links_code_or_a_new_row() {
        let hostile = "<img src=x onerror=alert(1)> [click](http://e) `x` *b* | c\n# h &amp;";
        let e = escape(hostile);
        assert!(!e.contains('<') && !e.contains('\n'), "{e}");
        assert!(e.contains("&lt;img") && e.contains("&amp;amp;"), "{e}");
        for syntax in ["[", "]", "(", ")", "`", "*", "|", "#"] {
            // every occurrence is escaped
            assert_eq!(
                e.matches(syntax).count(),
                e.matches(&format!("\\{syntax}")).count(),
                "{syntax} in {e}"
            );
        }
    }
}
