//! Registration and rename races on unique indexes, with real threads started together.

use std::sync::Barrier;

use revkv::{Collection, Conflict, Error, Store};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    username: String,
    email: String,
}

fn users(store: &Store) -> revkv::Result<Collection<User>> {
    store
        .collection::<User>("users")
        .unique("email", |u: &User| u.email.to_lowercase())
        .unique("username", |u: &User| u.username.clone())
        .open()
}

/// Runs `f(i)` on `n` threads released together; returns the results in thread order.
fn race<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("thread panicked"))
            .collect()
    })
}

#[test]
fn exactly_one_of_eight_registrations_with_one_email_wins() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    for round in 0..200 {
        let email = format!("same-{round}@example.com");
        let results = race(8, |i| {
            users.insert(
                &format!("r{round}-u{i}"),
                User {
                    username: format!("r{round}-name{i}"),
                    email: email.to_uppercase(),
                },
            )
        });
        let winners: Vec<usize> = (0..8).filter(|i| results[*i].is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner_key = format!("r{round}-u{}", winners[0]);
        for (i, result) in results.iter().enumerate().filter(|(i, _)| *i != winners[0]) {
            match result {
                Err(Error::Conflict(Conflict::Unique {
                    index,
                    value,
                    holder,
                    ..
                })) => {
                    assert_eq!((index.as_str(), value.as_str()), ("email", email.as_str()));
                    assert_eq!(holder, &winner_key, "round {round}, loser {i}");
                }
                other => panic!("round {round}, thread {i}: {other:?}"),
            }
        }
        let holder = users.find_unique("email", &email)?.expect("indexed");
        assert_eq!(
            holder.value.username,
            format!("r{round}-name{}", winners[0])
        );
    }
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.records, 200);
    Ok(())
}

#[test]
fn exactly_one_of_two_renames_onto_one_free_username_wins() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let users = users(&store)?;
    for round in 0..200 {
        let keys = [format!("a{round}"), format!("b{round}")];
        let mut versions = Vec::new();
        for key in &keys {
            versions.push(users.insert(
                key,
                User {
                    username: format!("{key}-old"),
                    email: format!("{key}@example.com"),
                },
            )?);
        }
        let target = format!("wanted-{round}");
        let results = race(2, |i| {
            users.update(
                &keys[i],
                versions[i],
                User {
                    username: target.clone(),
                    email: format!("{}@example.com", keys[i]),
                },
            )
        });
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        let loser = results.iter().position(Result::is_err).expect("one lost");
        assert!(matches!(
            &results[loser],
            Err(Error::Conflict(Conflict::Unique { index, holder, .. }))
                if index == "username" && holder == &keys[1 - loser]
        ));
        // The winner's old name is free again; the loser kept its own.
        assert!(
            users
                .find_unique("username", &format!("{}-old", keys[1 - loser]))?
                .is_none()
        );
        assert!(
            users
                .find_unique("username", &format!("{}-old", keys[loser]))?
                .is_some()
        );
    }
    let report = store.verify()?;
    assert!(report.is_clean(), "{report}");
    Ok(())
}
