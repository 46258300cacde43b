//! What requests to a receiver may hold before they prove themselves: the
//! per-receiver limit (429), the node's byte budget (503), a refusal before
//! the body when the headers settle it, the body's read deadline (408), and
//! the bounded log of unverified requests.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{TestApp, assert_error, send};
use crate::receivers::{SECRET, Setup, fixture, post_incoming, request_detail, signed};

/// A signature header that cannot match: the body must be read to find out.
const WRONG_SIGNATURE: &str =
    "sha256=0000000000000000000000000000000000000000000000000000000000000000";

async fn connect(herald: &TestApp) -> TcpStream {
    TcpStream::connect(herald.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Sends a request's head (and `body_start`) to receiver `id`, announcing
/// `length` bytes of body (chunked when `None`), and leaves it open.
async fn start_request(
    herald: &TestApp,
    id: &str,
    extra_headers: &str,
    length: Option<usize>,
    body_start: &[u8],
) -> TcpStream {
    let framing = match length {
        Some(length) => format!("Content-Length: {length}"),
        None => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST /.api/webhooks/{id} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         {extra_headers}{framing}\r\n\r\n"
    );
    let mut stream = connect(herald).await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body_start).await.unwrap();
    stream
}

/// Reads one response: its status and JSON body (the server closes or the
/// response is complete within the limit).
async fn read_response(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut answer = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buffer))
            .await
            .expect("the server answers")
            .unwrap_or(0);
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n")
            && let Ok(json) = serde_json::from_str::<Value>(body)
        {
            let status = head[9..12].parse().unwrap();
            return (status, head.to_owned(), json);
        }
        assert!(
            read > 0,
            "the connection closed without a JSON answer: {text}"
        );
    }
}

fn retry_after(head: &str) -> Option<u64> {
    head.lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(str::to_owned)
        })
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn unsigned_bodies_past_the_receivers_limit_get_429_and_signed_ones_pass_afterwards() {
    let herald = TestApp::spawn_with(|config| {
        config.app.limits.ingest.unverified_per_receiver = 2;
    })
    .await;
    let setup = Setup::on(herald, "github", "https://github.com").await;
    let id = setup.id().to_owned();
    let wrong = format!("X-GitHub-Event: push\r\nX-Hub-Signature-256: {WRONG_SIGNATURE}\r\n");
    // Two bodies the receiver is still reading: its two places.
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(start_request(&setup.herald, &id, &wrong, Some(100), b"{\"half\":").await);
    }
    // Let the server take both places (no answer can come before the bodies end).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut third = start_request(&setup.herald, &id, &wrong, Some(2), b"{}").await;
    let (status, head, error) = read_response(&mut third).await;
    assert_error(status, &error, 429, "receiver_busy", None);
    assert!(retry_after(&head).is_some_and(|s| s > 0), "{head}");

    // The held bodies end; each is refused on its signature, as usual.
    for stream in &mut held {
        stream.write_all(&[b' '; 92]).await.unwrap();
        let (status, _, error) = read_response(stream).await;
        assert_error(status, &error, 401, "unverified", None);
    }
    let body = fixture("octokit/push.01.json");
    let (status, accepted) = setup.deliver("push", &body).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(setup.events().await.len(), 1);

    // Nothing half-recorded: the two refusals and the delivery, whole; the 429 not at all.
    let logged = setup.requests().await;
    let outcomes: Vec<&str> = logged
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["processed", "unverified", "unverified"]);
    for request in &logged[1..] {
        assert_eq!(request["status_code"], 401);
    }
}

#[tokio::test]
async fn a_body_past_the_nodes_budget_gets_503_announced_or_not() {
    let body = fixture("octokit/push.01.json");
    let budget = body.len() + 1024;
    let herald = TestApp::spawn_with(|config| {
        config.app.limits.ingest.unverified_budget_bytes = budget;
    })
    .await;
    let setup = Setup::on(herald, "github", "https://github.com").await;
    let id = setup.id().to_owned();
    let wrong = format!("X-GitHub-Event: push\r\nX-Hub-Signature-256: {WRONG_SIGNATURE}\r\n");

    let mut announced = start_request(&setup.herald, &id, &wrong, Some(budget + 1), b"").await;
    let (status, head, error) = read_response(&mut announced).await;
    assert_error(status, &error, 503, "ingest_busy", None);
    assert!(retry_after(&head).is_some(), "{head}");

    // Chunked: refused once what arrived outgrows the budget. The buffer
    // grows by doubling, 4 KiB then 8 KiB then 16 KiB: the third piece is over.
    let mut chunked = start_request(&setup.herald, &id, &wrong, None, b"").await;
    let piece = vec![b' '; 4096];
    for _ in 0..3 {
        let chunk = [format!("{:x}\r\n", piece.len()).as_bytes(), &piece, b"\r\n"].concat();
        chunked.write_all(&chunk).await.unwrap();
    }
    let (status, head, error) = read_response(&mut chunked).await;
    assert_error(status, &error, 503, "ingest_busy", None);
    assert!(retry_after(&head).is_some(), "{head}");

    // A signed body within the budget goes through; the refusals left no row.
    let (status, accepted) = setup.deliver("push", &body).await;
    assert_eq!(status, 200, "{accepted}");
    let logged = setup.requests().await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["outcome"], "processed");
}

#[tokio::test]
async fn a_request_the_headers_refuse_is_answered_before_its_body_is_sent() {
    let setup = Setup::new("gitlab", "https://gitlab.example.com").await;
    let id = setup.id().to_owned();
    // 20 MiB announced, none sent: a wrong token is settled on the headers.
    let wrong = "X-Gitlab-Event: Push Hook\r\nX-Gitlab-Token: guessed\r\n";
    let mut stream = start_request(&setup.herald, &id, wrong, Some(20 << 20), b"").await;
    let (status, _, error) = read_response(&mut stream).await;
    assert_error(status, &error, 401, "unverified", None);

    let github = Setup::new("github", "https://github.com").await;
    let id = github.id().to_owned();
    let unsigned = "X-GitHub-Event: push\r\n";
    let mut stream = start_request(&github.herald, &id, unsigned, Some(20 << 20), b"").await;
    let (status, _, error) = read_response(&mut stream).await;
    assert_error(status, &error, 401, "unverified", None);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256")
    );
    let logged = github.requests().await;
    let detail = request_detail(&github.herald, &id, logged[0]["id"].as_str().unwrap()).await;
    assert!(
        detail["verification"]
            .as_str()
            .unwrap()
            .contains("before its body was read"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_a_json_408() {
    let herald = TestApp::spawn_with(|config| {
        config.http.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let setup = Setup::on(herald, "github", "https://github.com").await;
    let id = setup.id().to_owned();
    let wrong = format!("X-GitHub-Event: push\r\nX-Hub-Signature-256: {WRONG_SIGNATURE}\r\n");
    let mut stream = start_request(&setup.herald, &id, &wrong, Some(100), b"{\"slow\":").await;
    let (status, _, error) = read_response(&mut stream).await;
    assert_error(status, &error, 408, "body_timeout", None);
    let logged = setup.requests().await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["status_code"], 408);
}

#[tokio::test]
async fn unverified_requests_are_kept_bounded_and_the_dropped_counted() {
    let herald = TestApp::spawn_with(|config| {
        config.app.limits.ingest.unverified_kept_per_receiver = 3;
    })
    .await;
    let setup = Setup::on(herald, "github", "https://github.com").await;
    let body = vec![b'x'; 100 * 1024];
    let long = "v".repeat(2000);
    for _ in 0..5 {
        let mut headers = signed("github", "push", b"another body", SECRET);
        headers.push(("x-filler".to_owned(), long.clone()));
        let (status, error) =
            post_incoming(&setup.herald, setup.id(), &headers, body.clone()).await;
        assert_error(status, &error, 401, "unverified", None);
    }
    let signed_body = fixture("octokit/push.01.json");
    let (status, accepted) = setup.deliver("push", &signed_body).await;
    assert_eq!(status, 200, "{accepted}");

    let logged = setup.requests().await;
    let outcomes: Vec<&str> = logged
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["processed", "unverified", "unverified", "unverified"]
    );
    let detail = request_detail(&setup.herald, setup.id(), logged[1]["id"].as_str().unwrap()).await;
    assert_eq!(detail["body"].as_str().unwrap().len(), 4 * 1024);
    assert_eq!(detail["body_truncated"], true);
    let filler = detail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-filler")
        .unwrap();
    assert!(filler["value"].as_str().unwrap().len() < 300, "{filler}");

    let (status, receiver) = send(
        setup
            .herald
            .get(&format!("/api/v1/receivers/{}", setup.id())),
    )
    .await;
    assert_eq!(status, 200, "{receiver}");
    assert_eq!(receiver["unverified_dropped"], 2);
}
