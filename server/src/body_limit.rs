//! Request bodies declared larger than `--max-body-bytes`: answered 413 only once the body
//! has been read and thrown away (up to [`DRAIN_AT_MOST`]), so the client, still sending,
//! reads the answer instead of finding its connection reset mid-upload. Bodies of unknown
//! length are cut at the limit by the layers behind this one while they stream.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

/// Most bytes read and discarded to answer 413 cleanly; a larger body gets the answer at once
/// and a closed connection.
const DRAIN_AT_MOST: u64 = 64 * 1024 * 1024;

/// How long the discarding may take, so a slow sender cannot hold the connection.
const DRAIN_FOR_AT_MOST: Duration = Duration::from_secs(10);

/// Middleware: refuses a body whose `Content-Length` is over `max_bytes`.
pub async fn refuse_oversized(
    State(max_bytes): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    let Some(length) = declared.filter(|length| *length > max_bytes as u64) else {
        return next.run(request).await;
    };
    if length <= DRAIN_AT_MOST {
        let _ = tokio::time::timeout(DRAIN_FOR_AT_MOST, discard(request.into_body())).await;
    }
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("The request body is {length} bytes; this server takes at most {max_bytes} (--max-body-bytes)."),
    )
        .into_response()
}

async fn discard(body: Body) {
    let mut chunks = body.into_data_stream();
    while let Some(Ok(_)) = chunks.next().await {}
}
