//! The service binary. `serve` (the default) loads the configuration, builds
//! the state, binds (loopback unless configured), serves until SIGINT or
//! SIGTERM, then drains requests for a bounded grace period. `healthcheck`
//! asks a running instance's `/healthz` and exits 0 or 1, so a container can
//! check itself without a shell or curl in the image.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Debug, Parser)]
#[command(version, about = "The Portcullis reference service")]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, global = true, env = "SERVICE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Exit 0 when the instance at the configured address answers /healthz.
    Healthcheck,
}

fn init_logging() {
    let spec = std::env::var("SERVICE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let (filter, problem) = match service::logging::filter(spec.as_deref()) {
        Ok(filter) => (filter, None),
        Err(problem) => (
            service::logging::filter(None).unwrap_or_default(),
            Some(problem),
        ),
    };
    tracing_subscriber::util::SubscriberInitExt::init(service::logging::subscriber(
        filter,
        std::io::stderr,
    ));
    if let Some(problem) = problem {
        tracing::warn!(%problem, "logging at the default level, info");
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match service::Config::load(cli.config.as_deref(), |name| std::env::var(name).ok())
    {
        Ok(config) => config,
        Err(err) => {
            init_logging();
            tracing::error!(error = %err, "invalid configuration");
            return ExitCode::from(2);
        }
    };

    match cli.command.unwrap_or(Command::Serve) {
        Command::Healthcheck => match healthcheck(config.bind).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Command::Serve => {
            init_logging();
            match serve(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %err, "service stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: service::Config) -> Result<(), Box<dyn std::error::Error>> {
    tracing::info!(version = env!("CARGO_PKG_VERSION"), bind = %config.bind, "starting");
    let state = service::startup::build_state(&config).await?;
    let router = service::build_router(state);

    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    // The grace period starts at the signal, not at startup.
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let mut stopping = stop_rx;
    let deadline = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = deadline => tracing::warn!("shutdown grace period over; dropping open connections"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received");
}

/// A minimal HTTP/1.1 GET of /healthz; a wildcard bind address is asked on loopback.
async fn healthcheck(bind: SocketAddr) -> Result<(), std::io::Error> {
    let mut target = bind;
    if target.ip().is_unspecified() {
        target.set_ip(if bind.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        if &head == b"HTTP/1.1 200" {
            Ok(())
        } else {
            Err(std::io::Error::other("unhealthy"))
        }
    };
    tokio::time::timeout(Duration::from_secs(3), check)
        .await
        .map_err(|_| std::io::Error::other("timed out"))?
}
