//! The metrics revkv records are the ones `revkv::METRICS` documents, by name: a conflict, an
//! `update_with`, commits and a flush's group commit, caught by a recorder of this thread.

use std::collections::BTreeSet;

use metrics_util::debugging::DebuggingRecorder;
use revkv::{METRICS, Store};

#[test]
fn every_metric_recorded_is_a_documented_one() -> revkv::Result<()> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = tempfile::tempdir()?;
    metrics::with_local_recorder(&recorder, || -> revkv::Result<()> {
        let store = Store::open(dir.path())?;
        let users = store
            .collection::<String>("users")
            .unique("name", String::clone)
            .open()?;
        users.insert("u1", "ada".to_owned())?;
        assert!(
            users.insert("u2", "ada".to_owned()).is_err(),
            "a unique conflict"
        );
        users.update_with("u1", |name| format!("{name}!"))?;
        store.flush()
    })?;
    let names: BTreeSet<String> = (snapshotter.snapshot().into_vec().iter())
        .map(|(key, ..)| key.key().name().to_owned())
        .collect();
    let documented: BTreeSet<String> = METRICS.iter().map(|&name| name.to_owned()).collect();
    assert!(names.is_subset(&documented), "undocumented: {names:?}");
    for name in [
        "revkv_conflicts_total",
        "revkv_update_with_calls_total",
        "revkv_commit_seconds",
        "revkv_group_commit_writes",
    ] {
        assert!(names.contains(name), "{name} not recorded: {names:?}");
    }
    Ok(())
}
