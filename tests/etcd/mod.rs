//! A private 3-member etcd cluster on 127.0.0.1 for one test: started in a temporary
//! directory on free ports, its members killable (SIGKILL) and restartable, all stopped when
//! the cluster is dropped. Needs the `etcd` binary (Debian's etcd-server; `.ci/deps`).
//!
//! Each etcd test binary includes this module with `mod etcd;`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use revkv::{Retention, Store, StoreBuilder};
use tempfile::TempDir;

pub struct Cluster {
    dir: TempDir,
    members: Vec<Member>,
}

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    process: Option<Child>,
}

impl Cluster {
    /// Starts the cluster and waits until it answers.
    pub fn start() -> Self {
        // One start at a time: ports found free are free only until a member binds them.
        static STARTING: Mutex<()> = Mutex::new(());
        let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
        let ports = free_ports(6);
        let members: Vec<Member> = (0..3)
            .map(|i| Member {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                process: None,
            })
            .collect();
        let mut cluster = Self {
            dir: tempfile::tempdir().expect("a directory for the cluster"),
            members,
        };
        for i in 0..3 {
            cluster.launch(i, "new");
        }
        cluster.wait_until_serving();
        cluster
    }

    /// The members' client URLs.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("http://127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The store `namespace` on this cluster.
    pub fn store(&self, namespace: &str) -> Store {
        self.builder(namespace)
            .open()
            .expect("a store on the cluster")
    }

    /// The store `namespace` on this cluster, keeping a change feed.
    pub fn store_with_feed(&self, namespace: &str) -> Store {
        self.builder(namespace)
            .change_feed(Retention::default())
            .open()
            .expect("a store with a change feed")
    }

    /// What a child process needs to open the store `namespace` on this cluster as child
    /// `index`, in one string for an environment variable; the child calls [`open_part`].
    pub fn part(&self, namespace: &str, index: usize) -> String {
        format!("{}|{namespace}|{index}", self.endpoints().join(","))
    }

    fn builder(&self, namespace: &str) -> StoreBuilder {
        Store::builder().etcd(self.endpoints()).namespace(namespace)
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut process) = self.members[i].process.take() {
            process.kill().expect("kill an etcd member");
            process.wait().expect("reap an etcd member");
        }
    }

    /// Starts member `i` again on its data.
    pub fn restart(&mut self, i: usize) {
        self.launch(i, "existing");
    }

    /// The index of the member that leads now, as the members report it.
    pub fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for (i, member) in self.members.iter().enumerate() {
                if member.process.is_some()
                    && self.status(i).is_some_and(|(id, leader)| id == leader)
                {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no etcd member leads");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Compacts the cluster's history up to its current revision, as an operator's
    /// `etcdctl compact` or etcd's auto-compaction does.
    pub fn compact(&self) {
        let status = self.etcdctl(0, &["endpoint", "status", "-w", "json"]);
        let revision = status
            .as_ref()
            .and_then(|s| s[0]["Status"]["header"]["revision"].as_u64())
            .expect("the cluster's revision");
        let compacted = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints()[0], "compact"])
            .arg(revision.to_string())
            .output()
            .expect("etcdctl runs");
        assert!(compacted.status.success(), "{compacted:?}");
    }

    /// `(member id, leader id)` as member `i` reports them.
    fn status(&self, i: usize) -> Option<(u64, u64)> {
        let status = self.etcdctl(
            i,
            &["--command-timeout=1s", "endpoint", "status", "-w", "json"],
        )?;
        let status = &status[0]["Status"];
        Some((
            status["header"]["member_id"].as_u64()?,
            status["leader"].as_u64()?,
        ))
    }

    /// What `etcdctl ARGS` against member `i` prints, as JSON.
    fn etcdctl(&self, i: usize, args: &[&str]) -> Option<serde_json::Value> {
        let output = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoints()[i]])
            .args(args)
            .output()
            .ok()?;
        serde_json::from_slice(&output.stdout).ok()
    }

    fn launch(&mut self, i: usize, state: &str) {
        let initial = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let member = &self.members[i];
        let data: PathBuf = self.dir.path().join(&member.name);
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", member.name)))
            .expect("a log file");
        let process = Command::new("etcd")
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", "revkv-test"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd runs (Debian's etcd-server: .ci/deps installs it)");
        self.members[i].process = Some(process);
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Store::builder()
                .etcd(self.endpoints())
                .namespace("health")
                .open()
            {
                Ok(_) => return,
                Err(error) => {
                    assert!(Instant::now() < deadline, "etcd does not serve: {error}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// In a child process: the store and the child's index that `part` ([`Cluster::part`])
/// names.
pub fn open_part(part: &str) -> (Store, usize) {
    let mut fields = part.split('|');
    let (endpoints, namespace, index) = (
        fields.next().expect("endpoints"),
        fields.next().expect("namespace"),
        fields.next().expect("index"),
    );
    let store = Store::builder()
        .etcd(endpoints.split(','))
        .namespace(namespace)
        .open()
        .expect("the store");
    (store, index.parse().expect("an index"))
}

/// The keys an `etcdctl get --keys-only` printed, once it succeeded.
pub fn listed_keys(output: &std::process::Output) -> Vec<String> {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `count` ports that were free a moment ago.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("address").port())
        .collect()
}
