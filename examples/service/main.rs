//! The revkv example service: users, items and orders over HTTP, every conflict answered as
//! an RFC 9457 problem with the status RFC 9110 gives it. The routes are in `app.rs`; the
//! README's HTTP section walks through them with curl.
//!
//! The store keeps a change feed (`GET /changes`) and sweeps expired order holds and
//! idempotency keys in the background.
//!
//! ```sh
//! cargo run --release --features axum --example service -- --data ./data --listen 127.0.0.1:8080
//! ```
//!
//! With `--etcd URL,URL,URL` (and the `etcd` feature) the store is in an etcd cluster instead,
//! under `--namespace`, and any number of instances can serve it together, with one change
//! feed. A secured cluster takes `--etcd-cacert`, `--etcd-cert` and `--etcd-key` (PEM files)
//! and `--etcd-user`, whose password comes from the environment variable
//! `REVKV_ETCD_PASSWORD`, never the command line. A store that cannot be opened ends the
//! service with one line on standard error and exit status 1.

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use revkv::http::Policy;
use revkv::{Retention, Store};
use tokio::net::TcpListener;

/// Serve the revkv example API over HTTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The store's directory (created if missing).
    #[arg(long, default_value = "./data")]
    data: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seconds a new order holds its stock unless it is paid or cancelled.
    #[arg(long, value_name = "SECONDS", default_value_t = app::Settings::default().hold.as_secs(), value_parser = seconds)]
    hold: u64,
    /// Seconds the answer to an Idempotency-Key is kept.
    #[arg(long, value_name = "SECONDS", default_value_t = app::Settings::default().idempotency_ttl.as_secs(), value_parser = seconds)]
    idempotency_ttl: u64,
    /// Seconds between two sweeps of expired holds and keys.
    #[arg(long, value_name = "SECONDS", default_value_t = 1, value_parser = seconds)]
    sweep_every: u64,
    /// Keep the store in the etcd cluster with these client URLs (comma-separated) instead
    /// of `--data`; needs the `etcd` feature.
    #[cfg(feature = "etcd")]
    #[arg(long, value_name = "URLS", value_delimiter = ',')]
    etcd: Vec<String>,
    /// The store's name in the etcd cluster: instances with one name serve one store.
    #[cfg(feature = "etcd")]
    #[arg(long, default_value = "shop")]
    namespace: String,
    /// The certificate authority (PEM) that signed the etcd members' certificates: TLS, with
    /// `https://` URLs.
    #[cfg(feature = "etcd")]
    #[arg(long, value_name = "FILE")]
    etcd_cacert: Option<PathBuf>,
    /// A client certificate (PEM) for etcd, with `--etcd-key`.
    #[cfg(feature = "etcd")]
    #[arg(
        long,
        value_name = "FILE",
        requires = "etcd_key",
        requires = "etcd_cacert"
    )]
    etcd_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[cfg(feature = "etcd")]
    #[arg(long, value_name = "FILE", requires = "etcd_cert")]
    etcd_key: Option<PathBuf>,
    /// The etcd user; the password is read from the environment variable
    /// `REVKV_ETCD_PASSWORD`.
    #[cfg(feature = "etcd")]
    #[arg(long, value_name = "NAME")]
    etcd_user: Option<String>,
}

/// A whole number of seconds, at least 1.
fn seconds(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) | Err(_) => Err("expected a whole number of seconds, at least 1".to_owned()),
        Ok(seconds) => Ok(seconds),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("revkv example service: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let builder = Store::builder()
        .sweep_every(Duration::from_secs(args.sweep_every))
        .change_feed(Retention::default());
    #[cfg(feature = "etcd")]
    if !args.etcd.is_empty() {
        let place = format!("etcd {} as {:?}", args.etcd.join(","), args.namespace);
        let mut on_etcd = builder.etcd(args.etcd.clone()).namespace(&args.namespace);
        if let Some(ca) = &args.etcd_cacert {
            let mut tls = revkv::EtcdTls::ca_file(ca)?;
            if let (Some(cert), Some(key)) = (&args.etcd_cert, &args.etcd_key) {
                tls = tls.client_files(cert, key)?;
            }
            on_etcd = on_etcd.etcd_tls(tls);
        }
        if let Some(user) = &args.etcd_user {
            let password = std::env::var("REVKV_ETCD_PASSWORD").map_err(|_| {
                format!("--etcd-user {user} needs its password in REVKV_ETCD_PASSWORD")
            })?;
            on_etcd = on_etcd.etcd_user(user, password);
        }
        return serve(on_etcd.open()?, &args, &place).await;
    }
    let place = args.data.display().to_string();
    serve(builder.path(&args.data).open()?, &args, &place).await
}

/// Serves the API on `store`, kept in `place`, until a stop is requested.
async fn serve(store: Store, args: &Args, place: &str) -> Result<(), Box<dyn std::error::Error>> {
    let settings = app::Settings {
        hold: Duration::from_secs(args.hold),
        idempotency_ttl: Duration::from_secs(args.idempotency_ttl),
    };
    let app = app::App::open(store, settings)?;
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!(
        "revkv example service listening on http://{} with its store in {place}; Ctrl-C stops it",
        listener.local_addr()?,
    );
    // Finish the requests in progress; dropping the app then closes the store cleanly.
    axum::serve(listener, app::router(app, Policy::default()))
        .with_graceful_shutdown(stop_requested())
        .await?;
    Ok(())
}

/// Ctrl-C or, on Unix, SIGTERM. A signal that cannot be listened for never arrives: the
/// service can then only be killed, which the store survives too.
async fn stop_requested() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => drop(terminate.recv().await),
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
