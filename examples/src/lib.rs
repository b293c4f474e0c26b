//! Workspace member holding the examples (see its `examples/` folder) and the little they share.
#![forbid(unsafe_code)]

pub mod storage;

/// Logs to stderr at `RUST_LOG`'s levels (`info` when unset).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

/// Serves `router` on `listener` until Ctrl-C (or, if that signal cannot be watched, until the
/// process is killed), letting requests in flight finish.
///
/// # Errors
///
/// When serving fails.
pub async fn serve_until_interrupted(
    listener: tokio::net::TcpListener,
    router: axum::Router,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await
}
