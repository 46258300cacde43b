//! A real webhook receiver on 127.0.0.1 whose behaviour depends on the path.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
}

#[derive(Default)]
struct Inner {
    addr: Mutex<Option<SocketAddr>>,
    hits: Mutex<HashMap<String, Vec<Hit>>>,
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

    fn record(&self, path: &str, headers: HeaderMap, body: Bytes) -> usize {
        let mut hits = self.0.hits.lock().unwrap();
        let list = hits.entry(path.to_owned()).or_default();
        list.push(Hit { headers, body });
        list.len()
    }

    async fn hang(&self) {
        let now = self.0.hanging.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most_hanging.fetch_max(now, Ordering::SeqCst);
        // Counts down even when the server drops the handler of a closed connection.
        let _leaving = Leaving(Arc::clone(&self.0));
        self.0.release.cancelled().await;
    }
}

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
    let nth = receiver.record(path, headers, body);
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
        "/busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "120")],
        )
            .into_response(),
        "/big" => (StatusCode::OK, "x".repeat(100 * 1024)).into_response(),
        "/hang" => {
            receiver.hang().await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
