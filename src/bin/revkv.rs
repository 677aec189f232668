//! `revkv`: look into, check, export, import, back up and copy revkv stores.
//!
//! A STORE is a directory (a local store) or `etcd://HOST:PORT[,HOST:PORT...]/NAMESPACE`.
//! Exit status: 0 on success, 1 when `verify` finds problems, 2 on any error (one line on
//! standard error).

use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use revkv::admin::{StoredRecord, Transferred};
use revkv::{Error, EtcdTls, Store};

#[derive(Parser)]
#[command(
    name = "revkv",
    version,
    about = "Look into, check and move revkv stores"
)]
struct Cli {
    /// Machine-readable output: JSON objects, one per line.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    access: Access,
    #[command(subcommand)]
    command: Command,
}

/// How to reach a secured etcd cluster.
#[derive(clap::Args)]
struct Access {
    /// The certificate authority (PEM) that signed the etcd members' certificates: TLS, the
    /// endpoints then being `https://`.
    #[arg(
        id = "etcd_cacert",
        long = "etcd-cacert",
        global = true,
        value_name = "FILE"
    )]
    cacert: Option<PathBuf>,
    /// A client certificate (PEM) for etcd, with --etcd-key.
    #[arg(
        id = "etcd_cert",
        long = "etcd-cert",
        global = true,
        value_name = "FILE",
        requires = "etcd_key"
    )]
    cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        id = "etcd_key",
        long = "etcd-key",
        global = true,
        value_name = "FILE",
        requires = "etcd_cert"
    )]
    key: Option<PathBuf>,
    /// The etcd user; its password is read from the environment variable
    /// `REVKV_ETCD_PASSWORD`.
    #[arg(
        id = "etcd_user",
        long = "etcd-user",
        global = true,
        value_name = "NAME"
    )]
    user: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Collections, record and index counts, sizes, and the version high-water mark.
    Inspect { store: String },
    /// One record as stored: key, version, times, size, value (base64 of its bincode).
    Get {
        store: String,
        collection: String,
        key: String,
    },
    /// Records as stored, in key order.
    Scan {
        store: String,
        collection: String,
        /// Only keys that start with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// At most this many records.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Checks every index against the records; exit status 1 on any problem.
    Verify { store: String },
    /// Writes every record and its history, as of one moment, to standard output (or --output).
    Export {
        store: String,
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Reads an export from standard input (or a file) into an empty store.
    Import {
        store: String,
        input: Option<PathBuf>,
    },
    /// Copies a local store, while it serves, into a new directory that opens as a store.
    Backup { dir: PathBuf, dest_dir: PathBuf },
    /// Copies every record and its history from one store into another, empty one.
    Copy { from: String, to: String },
}

/// How a command failed.
enum Failure {
    /// `verify` found problems (exit status 1).
    Problems,
    /// Anything else (exit status 2).
    Error(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::Error(error.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Problems) => ExitCode::from(1),
        Err(Failure::Error(message)) => {
            eprintln!("revkv: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let json = cli.json;
    let access = &cli.access;
    match &cli.command {
        Command::Inspect { store } => inspect(&open_existing(store, access)?, json),
        Command::Get {
            store,
            collection,
            key,
        } => {
            let record = open_existing(store, access)?.stored(collection, key)?;
            let record = record.ok_or_else(|| format!("{collection}/{key} does not exist"))?;
            print_record(&record, json);
            Ok(())
        }
        Command::Scan {
            store,
            collection,
            prefix,
            limit,
        } => {
            for record in
                open_existing(store, access)?.stored_records(collection, prefix, *limit)?
            {
                print_record(&record, json);
            }
            Ok(())
        }
        Command::Verify { store } => verify(&open_existing(store, access)?, json),
        Command::Export { store, output } => {
            let store = open_existing(store, access)?;
            let bar = progress("exporting");
            let done = match output {
                Some(path) => store.export(bar.wrap_write(File::create(path)?))?,
                None => store.export(bar.wrap_write(std::io::stdout().lock()))?,
            };
            bar.finish_and_clear();
            summary("exported", &done, json);
            Ok(())
        }
        Command::Import { store, input } => {
            let store = open(store, access)?;
            let bar = progress("importing");
            let done = match input {
                Some(path) => {
                    let file = File::open(path)?;
                    bar.set_length(file.metadata()?.len());
                    store.import(BufReader::new(bar.wrap_read(file)))?
                }
                None => store.import(BufReader::new(bar.wrap_read(std::io::stdin().lock())))?,
            };
            bar.finish_and_clear();
            summary("imported", &done, json);
            Ok(())
        }
        Command::Backup { dir, dest_dir } => {
            if dir.to_str().is_some_and(|d| d.starts_with("etcd://")) {
                return Err(
                    "backup copies a local store; for an etcd store use `revkv export`".into(),
                );
            }
            let store = open_existing(&dir.to_string_lossy(), access)?;
            let bar = progress("backing up");
            let done = store.backup(dest_dir)?;
            bar.finish_and_clear();
            summary("backed up", &done, json);
            Ok(())
        }
        Command::Copy { from, to } => {
            let (source, target) = (open_existing(from, access)?, open(to, access)?);
            let bar = progress("copying");
            let (reader, writer) = std::io::pipe()?;
            let done = std::thread::scope(|scope| {
                let export = scope.spawn(move || source.export(BufWriter::new(writer)));
                let imported = target.import(BufReader::new(bar.wrap_read(reader)));
                let exported = export.join().map_err(|_| "the export failed")?;
                // The import's error says more, unless the export failed first.
                exported?;
                imported.map_err(Failure::from)
            })?;
            bar.finish_and_clear();
            summary("copied", &done, json);
            Ok(())
        }
    }
}

/// The store STORE names, which must exist already.
fn open_existing(store: &str, access: &Access) -> Result<Store, Failure> {
    if !store.starts_with("etcd://") && !store.starts_with("etcd-legacy://") {
        let path = Path::new(store);
        if !path.join("db").is_file() {
            let what = if path.exists() {
                "no revkv store"
            } else {
                "nothing"
            };
            return Err(format!("{store}: there is {what} there").into());
        }
    }
    open(store, access)
}

/// The store STORE names, created if it is a directory that does not exist yet.
fn open(store: &str, access: &Access) -> Result<Store, Failure> {
    let (etcd, legacy) = match (
        store.strip_prefix("etcd://"),
        store.strip_prefix("etcd-legacy://"),
    ) {
        (Some(etcd), _) => (etcd, false),
        (None, Some(etcd)) => (etcd, true),
        (None, None) => return open_local(store),
    };
    let (hosts, namespace) = etcd
        .split_once('/')
        .filter(|(hosts, namespace)| !hosts.is_empty() && !namespace.is_empty())
        .ok_or_else(|| {
            format!("{store}: an etcd store is etcd://HOST:PORT[,HOST:PORT...]/NAMESPACE")
        })?;
    let scheme = if access.cacert.is_some() {
        "https"
    } else {
        "http"
    };
    let endpoints = hosts.split(',').map(|host| format!("{scheme}://{host}"));
    let mut builder = Store::builder()
        .etcd(endpoints.collect::<Vec<_>>())
        .namespace(namespace)
        .etcd_deadline(Duration::from_secs(10));
    if let Some(ca) = &access.cacert {
        let mut tls = EtcdTls::ca_file(ca)?;
        if let (Some(cert), Some(key)) = (&access.cert, &access.key) {
            tls = tls.client_files(cert, key)?;
        }
        builder = builder.etcd_tls(tls);
    }
    if let Some(user) = &access.user {
        let password = std::env::var("REVKV_ETCD_PASSWORD")
            .map_err(|_| format!("--etcd-user {user} needs its password in REVKV_ETCD_PASSWORD"))?;
        builder = builder.etcd_user(user, password);
    }
    if legacy {
        builder = builder.etcd_legacy_layout();
    }
    Ok(builder.open()?)
}

/// The local store in the directory `store`, created if it does not exist yet.
fn open_local(store: &str) -> Result<Store, Failure> {
    Store::open(store).map_err(|e| match e {
        Error::Locked { .. } => Failure::Error(format!(
            "{e}: stop the service that uses it, or read it over etcd"
        )),
        e => Failure::Error(format!("{store}: {e}")),
    })
}

fn inspect(store: &Store, json: bool) -> Result<(), Failure> {
    let inspection = store.inspect()?;
    if json {
        println!("{}", serde_json::to_string(&inspection)?);
        return Ok(());
    }
    for c in &inspection.collections {
        println!(
            "{}: {} records ({} expiring), {} bytes, {} earlier versions",
            c.name, c.records, c.expiring, c.bytes, c.history
        );
        for index in &c.unique {
            println!("  unique index {}: {} entries", index.name, index.entries);
        }
        for index in &c.indexes {
            println!("  index {}: {} entries", index.name, index.entries);
        }
    }
    println!("versions issued: below {}", inspection.versions_below);
    if let Some(position) = inspection.feed_position {
        println!("change feed: newest position {position}");
    }
    if inspection.incomplete {
        println!("INCOMPLETE: an import into this store was cut short");
    }
    Ok(())
}

fn verify(store: &Store, json: bool) -> Result<(), Failure> {
    let report = store.verify()?;
    if json {
        let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        let line = serde_json::json!({
            "clean": report.is_clean(),
            "records": report.records,
            "index_entries": report.index_entries,
            "problems": problems,
        });
        println!("{line}");
    } else {
        println!("{report}");
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(Failure::Problems)
    }
}

fn print_record(record: &StoredRecord, json: bool) {
    if json {
        println!("{}", record.to_json());
        return;
    }
    let time = |t: SystemTime| humantime::format_rfc3339_micros(t).to_string();
    let expires = record.expires.map_or_else(|| "never".to_owned(), time);
    println!(
        "{}\tversion {}\tmodified {}\texpires {}\t{} bytes\t{}",
        record.key,
        record.version,
        time(record.modified),
        expires,
        record.value.len(),
        base64::engine::general_purpose::STANDARD.encode(&record.value)
    );
}

fn summary(what: &str, done: &Transferred, json: bool) {
    let line = if json {
        serde_json::json!({
            "collections": done.collections,
            "records": done.records,
            "history": done.history,
        })
        .to_string()
    } else {
        format!(
            "{what} {} records and {} earlier versions of {} collections",
            done.records, done.history, done.collections
        )
    };
    // Standard error: an export's data has standard output.
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A progress bar on standard error when it is a terminal, hidden otherwise.
fn progress(what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} {bytes} ({bytes_per_sec}) {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_message(what);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// clap's own check of the arguments: ids, conflicts and requirements that fit together.
    #[test]
    fn the_arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}
