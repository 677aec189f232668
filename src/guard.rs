//! State-transition guards: a declared state machine per collection.

use std::collections::{BTreeMap, BTreeSet};

/// The transitions a collection's records may take, and the states they may start in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StateMachine {
    next: BTreeMap<String, BTreeSet<String>>,
    /// `None`: records may be created in any state.
    initial: Option<BTreeSet<String>>,
}

impl StateMachine {
    pub(crate) fn new<I, S>(transitions: I) -> Self
    where
        I: IntoIterator<Item = (S, S)>,
        S: Into<String>,
    {
        let mut next: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in transitions {
            next.entry(from.into()).or_default().insert(to.into());
        }
        Self {
            next,
            initial: None,
        }
    }

    pub(crate) fn restrict_initial<I, S>(&mut self, states: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.initial = Some(states.into_iter().map(Into::into).collect());
    }

    /// `Err(allowed)` when records may not be created in `state`.
    pub(crate) fn check_initial(&self, state: &str) -> Result<(), Vec<String>> {
        match &self.initial {
            Some(initial) if !initial.contains(state) => Err(initial.iter().cloned().collect()),
            _ => Ok(()),
        }
    }

    /// `Err(allowed from "from")` when the move is not declared. Staying in a state is always
    /// allowed, so updates that do not touch the state are never refused.
    pub(crate) fn check_transition(&self, from: &str, to: &str) -> Result<(), Vec<String>> {
        let allowed = self.next.get(from);
        if from == to || allowed.is_some_and(|next| next.contains(to)) {
            Ok(())
        } else {
            Err(allowed
                .map(|n| n.iter().cloned().collect())
                .unwrap_or_default())
        }
    }

    /// Whether a record could legally be in `state`: it is an initial state, or reachable from
    /// one. With no initial restriction every state is reachable.
    pub(crate) fn is_reachable(&self, state: &str) -> bool {
        let Some(initial) = &self.initial else {
            return true;
        };
        let mut seen: BTreeSet<&str> = initial.iter().map(String::as_str).collect();
        let mut frontier: Vec<&str> = seen.iter().copied().collect();
        while let Some(from) = frontier.pop() {
            for to in self.next.get(from).into_iter().flatten() {
                if seen.insert(to) {
                    frontier.push(to);
                }
            }
        }
        seen.contains(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> StateMachine {
        let mut machine = StateMachine::new([
            ("pending", "paid"),
            ("paid", "shipped"),
            ("pending", "cancelled"),
        ]);
        machine.restrict_initial(["pending"]);
        machine
    }

    #[test]
    fn declared_moves_pass_and_others_list_what_is_allowed() {
        let machine = orders();
        assert_eq!(machine.check_transition("pending", "paid"), Ok(()));
        assert_eq!(machine.check_transition("paid", "paid"), Ok(()));
        assert_eq!(
            machine.check_transition("pending", "shipped"),
            Err(vec!["cancelled".to_owned(), "paid".to_owned()])
        );
        assert_eq!(machine.check_transition("shipped", "pending"), Err(vec![]));
    }

    #[test]
    fn initial_states_and_reachability() {
        let machine = orders();
        assert_eq!(machine.check_initial("pending"), Ok(()));
        assert_eq!(
            machine.check_initial("paid"),
            Err(vec!["pending".to_owned()])
        );
        assert!(machine.is_reachable("shipped"));
        assert!(!machine.is_reachable("refunded"));
        assert!(StateMachine::new([("a", "b")]).is_reachable("anything"));
    }
}
