//! A trace's events as a tree: each event under its parent, in the order they started.

use std::collections::HashMap;

/// One row of the tree: the event's index in the page and how deep it sits (0 for the top).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) index: usize,
    pub(crate) depth: usize,
}

/// The rows of a page's events, given in start order as `(id, parent id)`: children follow
/// their parent, in start order. An event without a parent, or whose parent is not on the page,
/// is a top-level row, in start order; a cycle of parents is broken at the first of its events
/// in start order, which becomes a top-level row. Every event is in exactly one row. Iterative,
/// so that a chain of 10,000 nested spans costs no stack.
pub(crate) fn rows(events: &[(Option<&str>, Option<&str>)]) -> Vec<Row> {
    let position: HashMap<&str, usize> = events
        .iter()
        .enumerate()
        .filter_map(|(i, (id, _))| id.map(|id| (id, i)))
        .collect();
    let parent = |i: usize| -> Option<usize> {
        let (_, parent_id) = events[i];
        position.get(parent_id?).copied().filter(|p| *p != i)
    };
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); events.len()];
    for i in 0..events.len() {
        if let Some(p) = parent(i) {
            children[p].push(i);
        }
    }
    let mut placed = vec![false; events.len()];
    let mut out = Vec::with_capacity(events.len());
    // Top-level rows first in start order; then, for any event a cycle kept out of reach, the
    // first in start order of what is left.
    let tops = (0..events.len()).filter(|&i| parent(i).is_none());
    let rest = 0..events.len();
    for top in tops.chain(rest) {
        if placed[top] {
            continue;
        }
        let mut stack = vec![(top, 0)];
        while let Some((i, depth)) = stack.pop() {
            if placed[i] {
                continue;
            }
            placed[i] = true;
            out.push(Row { index: i, depth });
            // Reversed, so that the earliest child comes off the stack first.
            for &child in children[i].iter().rev() {
                if !placed[child] {
                    stack.push((child, depth + 1));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(events: &[(Option<&str>, Option<&str>)]) -> Vec<(usize, usize)> {
        rows(events).iter().map(|r| (r.index, r.depth)).collect()
    }

    #[test]
    fn children_follow_their_parent_in_start_order() {
        let events = [
            (Some("root"), None),
            (Some("a"), Some("root")),
            (Some("b"), Some("root")),
            (Some("a1"), Some("a")),
            (None, Some("b")),
        ];
        assert_eq!(shape(&events), [(0, 0), (1, 1), (3, 2), (2, 1), (4, 2)]);
    }

    #[test]
    fn an_orphan_is_a_top_level_row_in_start_order() {
        let events = [
            (Some("child"), Some("not-on-this-page")),
            (Some("root"), None),
            (Some("late"), Some("root")),
        ];
        assert_eq!(shape(&events), [(0, 0), (1, 0), (2, 1)]);
    }

    #[test]
    fn a_cycle_is_broken_at_its_first_event_and_every_event_shows_once() {
        let events = [
            (Some("x"), Some("z")),
            (Some("y"), Some("x")),
            (Some("z"), Some("y")),
            (Some("self"), Some("self")),
            (Some("w"), Some("y")),
        ];
        assert_eq!(shape(&events), [(3, 0), (0, 0), (1, 1), (2, 2), (4, 2)]);
    }

    #[test]
    fn a_deep_chain_costs_no_stack() {
        let ids: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
        let events: Vec<(Option<&str>, Option<&str>)> = (0..10_000)
            .map(|i| {
                (
                    Some(ids[i].as_str()),
                    i.checked_sub(1).map(|p| ids[p].as_str()),
                )
            })
            .collect();
        let rows = rows(&events);
        assert_eq!(rows.len(), 10_000);
        assert_eq!(
            rows[9_999],
            Row {
                index: 9_999,
                depth: 9_999
            }
        );
    }
}
