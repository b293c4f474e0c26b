//! Workspace member holding the examples (see its `examples/` folder) and the little they share.
#![forbid(unsafe_code)]

pub mod storage;

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
