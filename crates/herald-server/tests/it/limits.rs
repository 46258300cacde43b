//! What a client may hold of the server: connections, and the time it takes
//! to send a request.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{TOKEN, TestApp, send};

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("the connection reads");
    answer
}

async fn connect(herald: &TestApp) -> TcpStream {
    TcpStream::connect(herald.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_or_idles_is_cut_off() {
    let herald = TestApp::spawn_with(|config| {
        config.http.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut slow = connect(&herald).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut slow, Duration::from_secs(10)).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    // A keep-alive connection that sends nothing after its first request.
    let mut idle = connect(&herald).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle, Duration::from_secs(10)).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_refused() {
    let herald = TestApp::spawn_with(|config| {
        config.http.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut slow = connect(&herald).await;
    let head = format!(
        "POST /api/v1/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\""
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut answer))
        .await
        .expect("the server answers before the body is complete")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(herald.webhooks().await.is_empty());
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let herald = TestApp::spawn_with(|config| config.http.max_connections = 1).await;
    let held = connect(&herald).await;
    // Let the server accept it and take the one slot.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let waiting = tokio::spawn({
        let request = herald.client.get(format!("{}/healthz", herald.base));
        async move { send(request).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "served past the connection cap");
    let released = Instant::now();
    drop(held);
    let (status, _) = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once the held connection closed")
        .unwrap();
    assert_eq!(status, 200);
    assert!(released.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn http2_is_refused_unless_configured() {
    let herald = TestApp::spawn().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let refused = h2.get(format!("{}/healthz", herald.base)).send().await;
    assert!(refused.is_err(), "{refused:?}");

    let herald = TestApp::spawn_with(|config| config.http.http2 = true).await;
    let answer = h2
        .get(format!("{}/healthz", herald.base))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    assert_eq!(answer.status(), 200);
}

/// Reads one whole answer (the server closes, or its JSON body is complete).
async fn answer_to(herald: &TestApp, request: &[u8]) -> String {
    let mut stream = connect(herald).await;
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("the server answers")
            .unwrap_or(0);
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let complete = text
            .split_once("\r\n\r\n")
            .is_some_and(|(_, body)| serde_json::from_str::<serde_json::Value>(body).is_ok());
        if read == 0 || complete {
            return text;
        }
    }
}

fn json_error(answer: &str) -> serde_json::Value {
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("no JSON body: {answer}"))
}

#[tokio::test]
async fn an_over_long_uri_or_too_many_headers_get_a_json_error() {
    let herald = TestApp::spawn().await;
    let long = "a".repeat(herald_server::MAX_URI_BYTES + 1);
    let request = format!("GET /healthz?{long} HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = answer_to(&herald, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert_eq!(json_error(&answer)["code"], "uri_too_long");

    let many: String = (0..=herald_server::MAX_HEADER_COUNT)
        .map(|i| format!("X-Filler-{i}: v\r\n"))
        .collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let answer = answer_to(&herald, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(json_error(&answer)["code"], "headers_too_large");

    let large = "v".repeat(herald_server::MAX_HEADER_BYTES);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Large: {large}\r\n\r\n");
    let answer = answer_to(&herald, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(json_error(&answer)["code"], "headers_too_large");
}

/// Past hyper's own limits (100 header fields, or a head over its read
/// buffer) hyper answers before any of Herald's code runs: no hook lets us
/// give that answer a body. This documents what a client gets then.
#[tokio::test]
async fn past_hypers_own_limits_the_answer_is_hypers_431_without_a_body() {
    let herald = TestApp::spawn().await;
    let many: String = (0..150).map(|i| format!("X-Filler-{i}: v\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let answer = answer_to(&herald, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(body.is_empty(), "{answer}");
}
