//! Linearizability: histories of concurrent CAS operations, recorded from real threads, must be
//! explainable by some sequential order of a versioned register that respects real time.
//!
//! Each run records invocation and completion of insert, update, delete and get on two keys from
//! four threads; a Wing–Gong style search then looks for a valid linearization per key (keys
//! are independent registers, so each is checked alone).

use std::collections::HashSet;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};

use revkv::{Conflict, Error, Store, Version};

const THREADS: usize = 4;
const OPS_PER_THREAD: usize = 5;
const RUNS: usize = 300;

#[derive(Clone, Debug)]
enum Call {
    Insert(u32),
    Update(Version, u32),
    Delete(Version),
    Get,
}

/// What the store answered, reduced to what the register model can check.
#[derive(Clone, Debug)]
enum Answer {
    Written(Version),
    Deleted,
    Exists(Version),
    Mismatch(Option<Version>),
    Read(Option<(Version, u32)>),
}

#[derive(Clone, Debug)]
struct Event {
    key: usize,
    call: Call,
    answer: Answer,
    invoked: u64,
    completed: u64,
}

type Register = Option<(Version, u32)>;

/// Applies `call` to `state` if `answer` is what a register in that state would answer.
fn step(state: Register, call: &Call, answer: &Answer) -> Option<Register> {
    let current = state.map(|(v, _)| v);
    match (call, answer) {
        (Call::Insert(value), Answer::Written(v)) if state.is_none() => Some(Some((*v, *value))),
        (Call::Insert(_), Answer::Exists(v)) if current == Some(*v) => Some(state),
        (Call::Update(expected, value), Answer::Written(v))
            if current == Some(*expected) && *v > *expected =>
        {
            Some(Some((*v, *value)))
        }
        (Call::Delete(expected), Answer::Deleted) if current == Some(*expected) => Some(None),
        (Call::Update(expected, _) | Call::Delete(expected), Answer::Mismatch(now))
            if current != Some(*expected) && *now == current =>
        {
            Some(state)
        }
        (Call::Get, Answer::Read(read)) if *read == state => Some(state),
        _ => None,
    }
}

/// Whether `events` (one key) have a linearization: depth-first over the events that may come
/// next (none of the remaining ones completed before they were invoked), memoising dead ends.
fn linearizable(events: &[Event]) -> bool {
    fn search(
        events: &[Event],
        done: u64,
        state: Register,
        dead: &mut HashSet<(u64, Register)>,
    ) -> bool {
        if done.count_ones() as usize == events.len() {
            return true;
        }
        if dead.contains(&(done, state)) {
            return false;
        }
        let pending = |i: usize| done & (1 << i) == 0;
        let earliest_completion = (0..events.len())
            .filter(|i| pending(*i))
            .map(|i| events[i].completed)
            .min()
            .unwrap_or(u64::MAX);
        for i in (0..events.len()).filter(|i| pending(*i)) {
            // Only an event invoked before every pending event completed can be next.
            if events[i].invoked > earliest_completion {
                continue;
            }
            if let Some(next) = step(state, &events[i].call, &events[i].answer)
                && search(events, done | (1 << i), next, dead)
            {
                return true;
            }
        }
        dead.insert((done, state));
        false
    }
    search(events, 0, None, &mut HashSet::new())
}

fn run_once(seed: u64) -> Vec<Event> {
    let store = Store::temporary().expect("store");
    let registers = store
        .collection::<u32>("registers")
        .open()
        .expect("collection");
    let clock = AtomicU64::new(0);
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (registers, clock, barrier) = (&registers, &clock, &barrier);
                s.spawn(move || {
                    let mut rng = fastrand::Rng::with_seed(seed * 31 + t as u64);
                    let mut known: [Option<Version>; 2] = [None, None];
                    let mut events = Vec::new();
                    barrier.wait();
                    for _ in 0..OPS_PER_THREAD {
                        let key = rng.usize(..2);
                        let name = ["x", "y"][key];
                        let guess = known[key].unwrap_or(Version::new(rng.u64(1..5)));
                        let value = rng.u32(..1000);
                        let call = match rng.u8(..4) {
                            0 => Call::Insert(value),
                            1 => Call::Update(guess, value),
                            2 => Call::Delete(guess),
                            _ => Call::Get,
                        };
                        let invoked = clock.fetch_add(1, Ordering::SeqCst);
                        let answer = match &call {
                            Call::Insert(v) => {
                                to_answer(registers.insert(name, v).map(Answer::Written))
                            }
                            Call::Update(e, v) => {
                                to_answer(registers.update(name, *e, v).map(Answer::Written))
                            }
                            Call::Delete(e) => {
                                to_answer(registers.delete(name, *e).map(|()| Answer::Deleted))
                            }
                            Call::Get => Answer::Read(
                                registers
                                    .get(name)
                                    .expect("get")
                                    .map(|r| (r.version, r.value)),
                            ),
                        };
                        let completed = clock.fetch_add(1, Ordering::SeqCst);
                        known[key] = match &answer {
                            Answer::Written(v) | Answer::Exists(v) => Some(*v),
                            Answer::Mismatch(v) => *v,
                            Answer::Read(r) => r.map(|(v, _)| v),
                            Answer::Deleted => None,
                        };
                        events.push(Event {
                            key,
                            call,
                            answer,
                            invoked,
                            completed,
                        });
                    }
                    events
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("thread"))
            .collect()
    })
}

fn to_answer(result: revkv::Result<Answer>) -> Answer {
    match result {
        Ok(answer) => answer,
        Err(Error::Conflict(Conflict::AlreadyExists { current, .. })) => Answer::Exists(current),
        Err(Error::Conflict(Conflict::VersionMismatch { current, .. })) => {
            Answer::Mismatch(current)
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[test]
fn concurrent_histories_are_linearizable() {
    for seed in 0..RUNS as u64 {
        let events = run_once(seed);
        for key in 0..2 {
            let history: Vec<Event> = events.iter().filter(|e| e.key == key).cloned().collect();
            assert!(
                linearizable(&history),
                "run {seed}, key {key}: not linearizable: {history:#?}"
            );
        }
    }
}

#[test]
fn the_checker_rejects_a_lost_update() {
    // Two updates from version 1 that both claim success cannot be linearized.
    let v = Version::new;
    let event = |call, answer, invoked, completed| Event {
        key: 0,
        call,
        answer,
        invoked,
        completed,
    };
    let history = [
        event(Call::Insert(0), Answer::Written(v(1)), 0, 1),
        event(Call::Update(v(1), 5), Answer::Written(v(2)), 2, 5),
        event(Call::Update(v(1), 6), Answer::Written(v(3)), 3, 4),
    ];
    assert!(!linearizable(&history));
    // With the second one refused, it can.
    let history = [
        event(Call::Insert(0), Answer::Written(v(1)), 0, 1),
        event(Call::Update(v(1), 5), Answer::Written(v(2)), 2, 5),
        event(Call::Update(v(1), 6), Answer::Mismatch(Some(v(2))), 3, 4),
    ];
    assert!(linearizable(&history));
}
