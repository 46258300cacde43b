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
