//! revkv on etcd as production runs it: a member that takes only TLS with client certificates
//! and has authentication enabled, users whose roles grant one namespace each (certificates
//! made with `openssl`, users and roles with `etcdctl`, as an operator would). A store opens
//! with the CA, a client certificate and a user, and writes, reads and follows its feed; a
//! wrong password, an untrusted certificate authority and a user without the namespace's
//! prefix each fail at once with their own typed error and store nothing; two services cannot
//! read each other's records.
#![cfg(feature = "etcd")]

mod etcd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use revkv::{Error, EtcdTls, Retention, Store};

/// One etcd member with TLS, client-certificate authentication and auth enabled.
struct Secured {
    dir: tempfile::TempDir,
    endpoint: String,
    member: Child,
}

impl Secured {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        certificate_authority(d, "ca");
        certificate_authority(d, "other-ca");
        certificate(
            d,
            "ca",
            "server",
            "etcd",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth",
        );
        certificate(d, "ca", "root", "root", "extendedKeyUsage=clientAuth");
        certificate(
            d,
            "ca",
            "client",
            "a-service",
            "extendedKeyUsage=clientAuth",
        );
        // A certificate whose common name is a user: it authenticates on its own.
        certificate(d, "ca", "svc1", "svc1", "extendedKeyUsage=clientAuth");
        let (endpoint, member) = member(d, "secured", &["--trusted-ca-file", "--client-cert-auth"]);
        let secured = Self {
            dir,
            endpoint,
            member,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !secured.etcdctl(&["endpoint", "health"]) {
            assert!(
                Instant::now() < deadline,
                "the secured member does not serve"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // As an operator: root, auth on, then one user and one role per service.
        for args in [
            &["user", "add", "root:root-password"][..],
            &["user", "grant-role", "root", "root"],
            &["auth", "enable"],
            &["user", "add", "svc1:password-1"],
            &["user", "add", "svc2:password-2"],
            &["role", "add", "one"],
            &["role", "add", "two"],
            &[
                "role",
                "grant-permission",
                "--prefix=true",
                "one",
                "readwrite",
                "revkv/one/",
            ],
            &[
                "role",
                "grant-permission",
                "--prefix=true",
                "two",
                "readwrite",
                "revkv/two/",
            ],
            &["user", "grant-role", "svc1", "one"],
            &["user", "grant-role", "svc2", "two"],
        ] {
            assert!(secured.etcdctl(args), "etcdctl {args:?}");
        }
        secured
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `etcdctl ARGS` as root (its client certificate's common name), whether it succeeded.
    fn etcdctl(&self, args: &[&str]) -> bool {
        self.etcdctl_output(args).status.success()
    }

    fn etcdctl_output(&self, args: &[&str]) -> std::process::Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.endpoint, "--command-timeout=2s"])
            .arg("--cacert")
            .arg(self.path("ca.pem"))
            .arg("--cert")
            .arg(self.path("root.pem"))
            .arg("--key")
            .arg(self.path("root-key.pem"))
            .args(args)
            .output()
            .expect("etcdctl runs")
    }

    /// Every key of the cluster.
    fn keys(&self) -> Vec<String> {
        etcd::listed_keys(&self.etcdctl_output(&["get", "", "--prefix", "--keys-only"]))
    }

    fn tls(&self, ca: &str) -> EtcdTls {
        EtcdTls::ca_file(self.path(&format!("{ca}.pem")))
            .expect("the CA")
            .client_files(self.path("client.pem"), self.path("client-key.pem"))
            .expect("the client certificate")
    }

    /// Opens `namespace` as `user` with `password`, trusting `ca`.
    fn open(
        &self,
        namespace: &str,
        (user, password): (&str, &str),
        ca: &str,
    ) -> revkv::Result<Store> {
        Store::builder()
            .etcd([self.endpoint.clone()])
            .etcd_tls(self.tls(ca))
            .etcd_user(user, password)
            .namespace(namespace)
            .change_feed(Retention::default())
            .etcd_deadline(Duration::from_secs(60))
            .open()
    }
}

impl Drop for Secured {
    fn drop(&mut self) {
        let _ = self.member.kill();
        let _ = self.member.wait();
    }
}

/// One etcd member serving TLS with the certificate `server.pem` of `dir`, and its client URL.
/// `--trusted-ca-file` in `extra` trusts `ca.pem` of `dir` for client certificates; other
/// flags pass as they are.
fn member(dir: &Path, name: &str, extra: &[&str]) -> (String, Child) {
    let ports = etcd::free_ports(2);
    let endpoint = format!("https://127.0.0.1:{}", ports[0]);
    let peer = format!("http://127.0.0.1:{}", ports[1]);
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
    let mut command = Command::new("etcd");
    command
        .args(["--name", name, "--data-dir"])
        .arg(dir.join(name))
        .args(["--listen-client-urls", &endpoint])
        .args(["--advertise-client-urls", &endpoint])
        .args(["--listen-peer-urls", &peer])
        .args(["--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("{name}={peer}")])
        .arg("--cert-file")
        .arg(dir.join("server.pem"))
        .arg("--key-file")
        .arg(dir.join("server-key.pem"));
    for flag in extra {
        command.arg(flag);
        if *flag == "--trusted-ca-file" {
            command.arg(dir.join("ca.pem"));
        }
    }
    let member = command
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("etcd runs (Debian's etcd-server: .ci/deps installs it)");
    (endpoint, member)
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(output.status.success(), "openssl {args:?}: {output:?}");
}

fn certificate_authority(dir: &Path, name: &str) {
    let (key, cert) = (format!("{name}-key.pem"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

fn certificate(dir: &Path, ca: &str, name: &str, common_name: &str, extensions: &str) {
    certificate_with_days(dir, ca, name, common_name, extensions, "2");
}

/// A certificate valid for `days` from now (negative: expired already).
fn certificate_with_days(
    dir: &Path,
    ca: &str,
    name: &str,
    common_name: &str,
    extensions: &str,
    days: &str,
) {
    let (key, csr, cert, ext) = (
        format!("{name}-key.pem"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), extensions).expect("extensions");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={common_name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            days,
            "-extfile",
            &ext,
        ],
    );
}

const SVC1: (&str, &str) = ("svc1", "password-1");
const SVC2: (&str, &str) = ("svc2", "password-2");

#[test]
fn a_secured_cluster_lets_each_service_into_its_own_namespace_only() {
    let cluster = Secured::start();

    // Service 1 opens its namespace with CA, client certificate and user; writes, reads, and
    // follows its feed.
    let one = cluster
        .open("one", SVC1, "ca")
        .expect("svc1 opens revkv/one/");
    let notes = one
        .collection::<String>("notes")
        .unique("text", Clone::clone)
        .open()
        .expect("notes");
    let v = notes.insert("n1", "first".to_string()).expect("insert");
    notes.update("n1", v, "second".to_string()).expect("update");
    assert_eq!(notes.get("n1").expect("get").expect("n1").value, "second");
    assert_eq!(one.changes_since(0).expect("the feed").count(), 2);
    let stored = cluster.keys();
    assert!(
        !stored.is_empty() && stored.iter().all(|key| key.starts_with("revkv/one/")),
        "{stored:?}"
    );

    // A wrong password, an untrusted CA, another service's namespace: each its own error, at
    // once (a deadline of 60 s would otherwise end them as Error::Unavailable), storing nothing.
    let wrong = cluster.open("one", ("svc1", "not-the-password"), "ca");
    assert!(matches!(wrong, Err(Error::EtcdAuthentication)), "{wrong:?}");
    let untrusted = cluster.open("one", SVC1, "other-ca");
    assert!(
        matches!(untrusted, Err(Error::EtcdCertificate { .. })),
        "{untrusted:?}"
    );
    let denied = cluster.open("two", SVC1, "ca");
    let Err(Error::EtcdPermission { prefix }) = &denied else {
        panic!("{denied:?}");
    };
    assert_eq!(prefix, "revkv/two/");
    assert!(
        denied
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("grant-permission --prefix=true ROLE readwrite revkv/two/")
    );
    assert_eq!(cluster.keys(), stored, "none of them stored anything");

    // Service 2 has its own namespace, and cannot read service 1's.
    let two = cluster
        .open("two", SVC2, "ca")
        .expect("svc2 opens revkv/two/");
    let theirs = two.collection::<String>("notes").open().expect("notes");
    theirs
        .insert("n1", "service two's".to_string())
        .expect("insert");
    assert_eq!(notes.get("n1").expect("get").expect("n1").value, "second");
    let prying = cluster.open("one", SVC2, "ca");
    assert!(
        matches!(prying, Err(Error::EtcdPermission { .. })),
        "{prying:?}"
    );

    // A client certificate whose common name is svc1 is svc1, without a password.
    let by_certificate = Store::builder()
        .etcd([cluster.endpoint.clone()])
        .etcd_tls(
            EtcdTls::ca_file(cluster.path("ca.pem"))
                .expect("the CA")
                .client_files(cluster.path("svc1.pem"), cluster.path("svc1-key.pem"))
                .expect("svc1's certificate"),
        )
        .namespace("one")
        .open()
        .expect("svc1 by its certificate");
    let read = by_certificate
        .collection::<String>("notes")
        .unique("text", Clone::clone)
        .open()
        .expect("notes");
    assert_eq!(read.get("n1").expect("get").expect("n1").value, "second");
}

/// The `revkv` command on the secured member: by certificate, and refused with a wrong
/// password in one line.
#[cfg(feature = "cli")]
#[test]
fn the_command_reaches_a_secured_cluster_with_the_same_options() {
    let cluster = Secured::start();
    let one = cluster
        .open("one", SVC1, "ca")
        .expect("svc1 opens revkv/one/");
    let notes = one.collection::<String>("notes").open().expect("notes");
    notes.insert("n1", "first".to_string()).expect("insert");
    drop((notes, one));
    let store = format!(
        "etcd://{}/one",
        cluster.endpoint.trim_start_matches("https://")
    );
    let revkv = |password: &str, user: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_revkv"))
            .env("REVKV_ETCD_PASSWORD", password)
            .args(["inspect", &store, "--etcd-cacert"])
            .arg(cluster.path("ca.pem"))
            .arg("--etcd-cert")
            .arg(cluster.path("svc1.pem"))
            .arg("--etcd-key")
            .arg(cluster.path("svc1-key.pem"))
            .args(user)
            .output()
            .expect("revkv runs")
    };
    let by_certificate = revkv("", &[]);
    let text = String::from_utf8_lossy(&by_certificate.stdout);
    assert!(by_certificate.status.success(), "{by_certificate:?}");
    assert!(text.contains("notes: 1 records"), "{text}");
    let refused = revkv("not-the-password", &["--etcd-user", "svc1"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "revkv: etcd refused the user: wrong name or password"
    );
}

/// A member whose own certificate has expired: the handshake fails at once with that reason.
#[test]
fn an_expired_member_certificate_is_a_certificate_error_at_once() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path();
    certificate_authority(d, "ca");
    // Not valid after yesterday.
    certificate_with_days(
        d,
        "ca",
        "server",
        "etcd",
        "subjectAltName=IP:127.0.0.1",
        "-1",
    );
    let (endpoint, mut member) = member(d, "expired", &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let address = endpoint.trim_start_matches("https://").to_owned();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(Instant::now() < deadline, "the member does not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let opened = Store::builder()
        .etcd([endpoint])
        .etcd_tls(EtcdTls::ca_file(d.join("ca.pem")).expect("the CA"))
        .namespace("shop")
        .etcd_deadline(Duration::from_secs(60))
        .open();
    let _ = member.kill();
    let _ = member.wait();
    let Err(Error::EtcdCertificate { reason }) = &opened else {
        panic!("{opened:?}");
    };
    assert!(reason.contains("Expired"), "{reason}");
}
