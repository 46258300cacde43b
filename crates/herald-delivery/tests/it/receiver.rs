//! A real webhook receiver on 127.0.0.1 whose behaviour depends on the path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Hit {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: Instant,
    /// Requests on the same path in progress as it arrived, itself included.
    pub concurrent: usize,
}

#[derive(Default)]
struct Inner {
    addr: Mutex<Option<SocketAddr>>,
    hits: Mutex<HashMap<String, Vec<Hit>>>,
    /// Requests in progress per path.
    in_progress: Mutex<HashMap<String, usize>>,
    release: CancellationToken,
    hanging: AtomicUsize,
    most_hanging: AtomicUsize,
    /// Whether `/switch` is up (answers 200) or down (500).
    up: AtomicBool,
}

#[derive(Clone)]
pub struct Receiver(Arc<Inner>);

impl Receiver {
    pub async fn start() -> Self {
        let receiver = Receiver(Arc::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        *receiver.0.addr.lock().unwrap() = Some(listener.local_addr().unwrap());
        let app = Router::new().fallback(answer).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.0.addr.lock().unwrap().unwrap())
    }

    /// Requests received on `path` (without the query), oldest first.
    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.0
            .hits
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }

    /// Lets every hanging request answer.
    pub fn release(&self) {
        self.0.release.cancel();
    }

    /// Brings `/switch` up: it answers 200 from now on.
    pub fn bring_up(&self) {
        self.0.up.store(true, Ordering::SeqCst);
    }

    pub fn hanging_now(&self) -> usize {
        self.0.hanging.load(Ordering::SeqCst)
    }

    pub fn most_hanging_at_once(&self) -> usize {
        self.0.most_hanging.load(Ordering::SeqCst)
    }

    /// The most requests on `path` that were in progress at once.
    pub fn most_at_once(&self, path: &str) -> usize {
        self.hits(path)
            .iter()
            .map(|hit| hit.concurrent)
            .max()
            .unwrap_or(0)
    }

    fn record(&self, path: &str, headers: HeaderMap, body: Bytes, concurrent: usize) -> usize {
        let mut hits = self.0.hits.lock().unwrap();
        let list = hits.entry(path.to_owned()).or_default();
        list.push(Hit {
            headers,
            body,
            at: Instant::now(),
            concurrent,
        });
        list.len()
    }

    /// Counts a request on `path` in progress until the answer drops.
    fn enter(&self, path: &str) -> (usize, InProgress) {
        let mut in_progress = self.0.in_progress.lock().unwrap();
        let count = in_progress.entry(path.to_owned()).or_default();
        *count += 1;
        let guard = InProgress(Arc::clone(&self.0), path.to_owned());
        (*count, guard)
    }

    async fn hang(&self) {
        let now = self.0.hanging.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most_hanging.fetch_max(now, Ordering::SeqCst);
        // Counts down even when the server drops the handler of a closed connection.
        let _leaving = Leaving(Arc::clone(&self.0));
        self.0.release.cancelled().await;
    }
}

struct InProgress(Arc<Inner>, String);

impl Drop for InProgress {
    fn drop(&mut self) {
        if let Some(count) = self.0.in_progress.lock().unwrap().get_mut(&self.1) {
            *count -= 1;
        }
    }
}

/// How long `/slow` takes to answer.
const SLOW: Duration = Duration::from_millis(20);
/// How long `/overloaded` takes to answer its 503: long enough that requests
/// sent together are surely in progress together.
const OVERLOADED: Duration = Duration::from_millis(100);

struct Leaving(Arc<Inner>);

impl Drop for Leaving {
    fn drop(&mut self) {
        self.0.hanging.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn answer(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let (concurrent, _in_progress) = receiver.enter(path);
    let nth = receiver.record(path, headers, body, concurrent);
    match path {
        "/ok" => (StatusCode::OK, "thanks").into_response(),
        "/flaky" if nth == 1 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/flaky" => StatusCode::OK.into_response(),
        "/always-500" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "/switch" if receiver.0.up.load(Ordering::SeqCst) => StatusCode::OK.into_response(),
        "/switch" => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "/gone" => StatusCode::GONE.into_response(),
        "/redirect" => {
            let target = receiver.url("/redirect-target");
            (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
        }
        "/busy-once" if nth == 1 => {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response()
        }
        "/busy-once" => StatusCode::NO_CONTENT.into_response(),
        "/busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "120")],
        )
            .into_response(),
        "/slow" => {
            tokio::time::sleep(SLOW).await;
            StatusCode::OK.into_response()
        }
        "/overloaded" => {
            tokio::time::sleep(OVERLOADED).await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        "/big" => (StatusCode::OK, "x".repeat(100 * 1024)).into_response(),
        "/hang" => {
            receiver.hang().await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
