//! The critical path: the chain of targets that set the build's length.
//!
//! The rule: the chain ends at the span that ends last (on a tie, the one that started
//! first, then the one recorded first). Each step back goes to the dependency of the current span that finished last —
//! among the spans of its recorded dependencies ([`Span::deps`]: checked before its `.do`
//! ran, or named by its nested requests) that ended no later than it did. The chain stops at a
//! span none of whose dependencies ran in this build (they were up to date, or are sources).
//! The one that finished last is the one the current span could not have done without any
//! sooner, so shortening anything off the chain cannot shorten the build by itself.

use super::timeline::{Span, Timeline};
use std::collections::HashMap;

/// Indices into `timeline.spans` of the critical path, first to last; empty for an empty build.
pub fn critical_path(timeline: &Timeline) -> Vec<usize> {
    let spans = &timeline.spans;
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        by_name.entry(s.target.as_str()).or_default().push(i);
    }
    let Some(mut cur) = last_to_end(spans) else {
        return Vec::new();
    };
    let mut chain = vec![cur];
    let mut on_chain = vec![false; spans.len()];
    on_chain[cur] = true;
    while let Some(next) = dep_finished_last(spans, &by_name, cur, &on_chain) {
        on_chain[next] = true;
        chain.push(next);
        cur = next;
    }
    chain.reverse();
    chain
}

fn last_to_end(spans: &[Span]) -> Option<usize> {
    (0..spans.len()).max_by(|&a, &b| {
        spans[a]
            .end
            .cmp(&spans[b].end)
            .then(spans[b].start.cmp(&spans[a].start))
            .then(b.cmp(&a))
    })
}

/// The span of a dependency of `spans[cur]` that ended last, no later than `spans[cur]`, and
/// not already on the chain (a cycle in recorded edges cannot loop).
fn dep_finished_last(
    spans: &[Span],
    by_name: &HashMap<&str, Vec<usize>>,
    cur: usize,
    on_chain: &[bool],
) -> Option<usize> {
    let end = spans[cur].end;
    spans[cur]
        .deps
        .iter()
        .filter_map(|d| by_name.get(d.as_str()))
        .flatten()
        .copied()
        .filter(|&i| !on_chain[i] && spans[i].end <= end)
        .max_by(|&a, &b| spans[a].end.cmp(&spans[b].end).then(b.cmp(&a)))
}

#[cfg(test)]
mod tests;
