//! A write can tell its caller the record it stored (`insert_versioned`, `update_versioned`):
//! the version, and the modification and expiry times that a later read returns, with no read
//! that could pick up another writer's later change.

use std::time::{Duration, SystemTime};

use revkv::{Conflict, Error, ManualClock, Store};

#[test]
fn a_write_returns_the_times_a_later_read_returns() -> revkv::Result<()> {
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let store = Store::builder().clock(clock.clone()).open()?;
    let notes = store.collection::<String>("notes").open()?;
    let created = notes.insert_versioned("n1", "hello".to_owned())?;
    assert_eq!(notes.get("n1")?.as_ref(), Some(&created));

    clock.advance(Duration::from_millis(1500));
    let updated = notes.update_versioned("n1", created.version, "again".to_owned())?;
    assert!(updated.modified > created.modified, "the clock moved on");
    assert_eq!(notes.get("n1")?, Some(updated.clone()));

    // Another writer changes it next: the stamp is still of this write, not of the record now.
    clock.advance(Duration::from_secs(1));
    notes.update("n1", updated.version, "theirs".to_owned())?;
    assert_ne!(notes.get("n1")?.map(|r| r.modified), Some(updated.modified));
    let stale = notes.update_versioned("n1", updated.version, "mine".to_owned());
    assert!(matches!(
        stale,
        Err(Error::Conflict(Conflict::VersionMismatch { .. }))
    ));
    Ok(())
}

#[test]
fn the_async_api_returns_the_stored_record_too() -> revkv::Result<()> {
    let store = Store::temporary()?;
    let notes = store.collection::<String>("notes").open()?.to_async();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (created, updated) = runtime.block_on(async {
        let created = notes.insert_versioned("n1", "hello".to_owned()).await?;
        let updated = notes
            .update_versioned("n1", created.version, "again".to_owned())
            .await?;
        Ok::<_, Error>((created, updated))
    })?;
    assert!(updated.version > created.version);
    assert_eq!(notes.blocking().get("n1")?, Some(updated));
    Ok(())
}
