//! The revkv example service: users, items and orders over HTTP, every conflict answered as
//! an RFC 9457 problem with the status RFC 9110 gives it. The routes are in `app.rs`; the
//! README's HTTP section walks through them with curl.
//!
//! ```sh
//! cargo run --release --features axum --example service -- --data ./data --listen 127.0.0.1:8080
//! ```

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use revkv::Store;
use revkv::http::Policy;
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
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let store = Store::open(&args.data)?;
    let app = app::App::open(store)?;
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!(
        "revkv example service listening on http://{} with its store in {}; Ctrl-C stops it",
        listener.local_addr()?,
        args.data.display()
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
