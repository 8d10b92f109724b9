//! The rule table rendered as Markdown for the documentation, generated from [`super::RULES`]
//! so the documents cannot drift from what the engine runs.
//!
//! [`markdown`] is the generated part of `docs/rules.md` (the tiers, then one table per tier);
//! [`tiers_markdown`] is the summary in `README.md`. `tests/docs.rs` compares both files with
//! these functions, and `UPDATE_DOCS=1 cargo test --test docs` rewrites them.

use super::{Phase, RULES, Rule, Tier};

/// Every tier, in the order the documents list them.
const TIERS: [Tier; 3] = [Tier::Upstream, Tier::Protective, Tier::Warning];

/// Every phase, in the order of the `ops` column's legend.
const PHASES: [Phase; 4] = [Phase::Create, Phase::Update, Phase::Status, Phase::Delete];

/// The generated part of `docs/rules.md`: the tier summary, the legend of the `ops` column and
/// one table per tier with every rule's id, operations, field, check, reason and source.
pub fn markdown() -> String {
    let mut out = tiers_markdown();
    out.push('\n');
    out.push_str(&ops_legend());
    for tier in TIERS {
        let rules: Vec<&Rule> = RULES.iter().copied().filter(|r| r.tier == tier).collect();
        if rules.is_empty() {
            continue;
        }
        out.push('\n');
        out.push_str(&format!("### {}\n\n", tier_heading(tier)));
        out.push_str(&format!(
            "| id | ops | field | {} | because | upstream source |\n",
            check_header(tier)
        ));
        out.push_str("|---|---|---|---|---|---|\n");
        for rule in rules {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                rule.id,
                ops(rule.phases),
                field_cell(rule.field),
                cell(rule.check),
                cell(rule.why),
                cell(rule.source),
            ));
        }
    }
    out
}

/// The tier summary: one row per tier with its rule ids (ranges where they run on) and verdict.
pub fn tiers_markdown() -> String {
    let mut out = String::from("| tier | ids | verdict |\n|---|---|---|\n");
    for tier in TIERS {
        let ids: Vec<&str> = RULES
            .iter()
            .filter(|r| r.tier == tier)
            .map(|r| r.id)
            .collect();
        if ids.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "| **{}**: {} | {} | {} |\n",
            tier.code(),
            tier_name(tier),
            id_ranges(&ids),
            tier_verdict(tier)
        ));
    }
    out
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Upstream => "upstream",
        Tier::Protective => "protective",
        Tier::Warning => "warning",
    }
}

fn tier_heading(tier: Tier) -> &'static str {
    match tier {
        Tier::Upstream => "Denied: upstream rules (U)",
        Tier::Protective => "Denied: protective rules (P)",
        Tier::Warning => "Warnings (W)",
    }
}

fn check_header(tier: Tier) -> &'static str {
    match tier {
        Tier::Upstream | Tier::Protective => "denied unless",
        Tier::Warning => "warns unless",
    }
}

fn tier_verdict(tier: Tier) -> &'static str {
    match tier {
        Tier::Upstream => {
            "Denied. The rules OpenShift enforces today (openshift/api on Kubernetes 1.36), with \
             the same field paths, cause types and messages, so `replay` tells you what `oc apply` \
             would say, even on an older cluster whose CRD lacks the newer checks."
        }
        Tier::Protective => {
            "Denied. Upstream is silent, but a wrong value demonstrably breaks a cluster: a search \
             registry CRI-O refuses, an import whitelist that stops openshift-apiserver from \
             starting, hostnames that break pull specs, an entry the machine-config operator \
             refuses to render with the cluster's mirror sets."
        }
        Tier::Warning => {
            "Allowed, with a warning that the API server prints on the client's terminal \
             (`Warning: ...`). A warning never changes the verdict."
        }
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Create => "create",
        Phase::Update => "update",
        Phase::Status => "update of the status subresource",
        Phase::Delete => "delete",
    }
}

fn ops_legend() -> String {
    let letters: Vec<String> = PHASES
        .iter()
        .map(|p| format!("{} {}", p.code(), phase_name(*p)))
        .collect();
    format!(
        "The `ops` column names the operations a rule judges: {}.\n",
        letters.join(", ")
    )
}

fn ops(phases: &[Phase]) -> String {
    phases
        .iter()
        .map(|p| p.code())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `M1-M4, D1, S1, S2`: runs of three or more consecutive ids with one prefix become a range.
fn id_ranges(ids: &[&str]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && follows(ids[j], ids[j + 1]) {
            j += 1;
        }
        match j - i {
            0 => parts.push(ids[i].to_owned()),
            1 => {
                parts.push(ids[i].to_owned());
                parts.push(ids[j].to_owned());
            }
            _ => parts.push(format!("{}-{}", ids[i], ids[j])),
        }
        i = j + 1;
    }
    parts.join(", ")
}

/// `(prefix, number)` of an id such as `W12`; `None` when it has no trailing number.
fn split_id(id: &str) -> Option<(&str, u32)> {
    let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (prefix, number) = id.split_at(id.len() - digits);
    number.parse().ok().map(|n| (prefix, n))
}

/// Whether `b` is the id right after `a` (`W12`, `W13`).
fn follows(a: &str, b: &str) -> bool {
    match (split_id(a), split_id(b)) {
        (Some((pa, na)), Some((pb, nb))) => pa == pb && na.checked_add(1) == Some(nb),
        _ => false,
    }
}

/// A field as a table cell: each comma-separated part that is a field path in code font.
fn field_cell(field: &str) -> String {
    field
        .split(", ")
        .map(|part| {
            if is_field_path(part) {
                format!("`{part}`")
            } else {
                cell(part)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `spec.registrySources.{insecure,blocked,allowed}Registries[i]`, `spec`: a path, not prose.
fn is_field_path(part: &str) -> bool {
    !part.is_empty()
        && !part.contains(char::is_whitespace)
        && !part.contains(['`', '|'])
        && part.starts_with(|c: char| c.is_ascii_lowercase())
        && (part.contains(['.', '[', '{'])
            || part.contains(|c: char| c.is_ascii_uppercase())
            || matches!(part, "spec" | "status" | "metadata"))
}

/// Text as a Markdown table cell: `|` escaped everywhere; outside code spans also `*`, `\`
/// and `<`, so that rule text never turns into emphasis or HTML.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '|' => out.push_str("\\|"),
            '*' | '\\' if !in_code => {
                out.push('\\');
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_ranges_join_runs_of_three_or_more() {
        assert_eq!(
            id_ranges(&[
                "M1", "M2", "M3", "M4", "D1", "S1", "S2", "T1", "R1", "R2", "R3"
            ]),
            "M1-M4, D1, S1, S2, T1, R1-R3"
        );
        assert_eq!(id_ranges(&["W9", "W10", "W11", "W13"]), "W9-W11, W13");
        assert_eq!(id_ranges(&["X", "X1"]), "X, X1");
        assert_eq!(id_ranges(&[]), "");
    }

    #[test]
    fn cells_escape_markdown_outside_code_spans() {
        assert_eq!(cell("(*.com) a|b"), "(\\*.com) a\\|b");
        assert_eq!(cell("is `*.x` <b>"), "is `*.x` &lt;b>");
        assert_eq!(
            field_cell("registry scopes, spec.x[i], any"),
            "registry scopes, `spec.x[i]`, any"
        );
        assert_eq!(field_cell("(object)"), "(object)");
        assert_eq!(field_cell("spec"), "`spec`");
    }

    #[test]
    fn every_rule_is_in_exactly_one_row() {
        let doc = markdown();
        for rule in RULES {
            let rows = doc
                .lines()
                .filter(|l| l.starts_with(&format!("| {} |", rule.id)))
                .count();
            assert_eq!(rows, 1, "rule {} has {rows} rows in:\n{doc}", rule.id);
        }
    }
}
