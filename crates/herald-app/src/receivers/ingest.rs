//! A code host's request to a receiver. The order matters: find the receiver,
//! check what the headers alone can settle (a token or basic auth verifies
//! here; a missing signature refuses here, before a byte of body is read),
//! read the body (within the unverified budget when only the body can settle
//! it, see [`budget`](crate::receivers::budget)), verify it over the raw bytes
//! before anything parses it, then identify, normalize and hand the work to
//! the store in one transaction with the log row, and only after that commit
//! run the post-commit hooks. Every request that reached a receiver is logged,
//! whatever its answer, except one refused because the receiver or the node
//! is busy (429, 503): that refusal protects the node under a flood, and
//! writing a row for each would undo it. Every answer but an internal failure
//! comes after its log row is durable.
//!
//! An unverified request's row is bounded: headers cut
//! ([`truncate_headers`]), body at most [`UNVERIFIED_BODY_KEPT`], and at most
//! [`IngestLimits::unverified_kept_per_receiver`](crate::receivers::IngestLimits)
//! such rows per receiver.

use herald_core::time::Timestamp;
use herald_ingest::{
    BodyCheck, CodeHostKind, IngestError, KeyUsed, Normalized, Precheck, Verified, VerifyError,
    identify, ignored_status, normalize, precheck, redact_headers, truncate_headers,
};
use herald_store::{
    Ingest, NewReceiverRequest, ReceiverId, ReceiverRecord, ReceiverRequestId,
    ReceiverRequestSummary, RequestOutcome,
};
use http::{HeaderMap, StatusCode};

use crate::receivers::admin::stored_kind;
use crate::receivers::budget::{BodySource, NotRead, UnreadBody, read_body};
use crate::receivers::{MAX_INCOMING_BODY_BYTES, credentials, plan};
use crate::{App, AppError, ErrorKind, metrics};

/// How much of an unverified body the log keeps: enough to see what was
/// sent, too little for strangers to fill the disk with.
pub const UNVERIFIED_BODY_KEPT: usize = 4 * 1024;

/// How to answer a request that was logged and accepted; refusals are
/// [`AppError`]s (also logged).
#[derive(Debug)]
pub enum IngestAnswer {
    /// Answer with the request's log row: processed (its events published), a
    /// duplicate delivery, a ping, or an event kind Herald ignores.
    Logged(ReceiverRequestSummary),
    /// Answer with no content: an ignored event from a host that records only
    /// such an answer as delivered and would otherwise retry it (GitLab).
    NoContent,
}

/// The log row of a request before it is verified: refused until shown otherwise.
fn unverified_row(
    receiver_id: ReceiverId,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> NewReceiverRequest {
    NewReceiverRequest {
        id: ReceiverRequestId::new(),
        receiver_id,
        headers,
        body,
        body_truncated: false,
        verified: false,
        verification: String::new(),
        status_code: StatusCode::UNAUTHORIZED.as_u16(),
        event_name: None,
        delivery_id: None,
        outcome: RequestOutcome::Unverified,
        message: None,
    }
}

/// A body read through its signature check: each piece goes through the
/// HMAC as it arrives, so the signature is settled when the last byte is.
struct Signed<'a, B> {
    body: &'a mut B,
    check: &'a mut BodyCheck,
}

impl<B: BodySource> BodySource for Signed<'_, B> {
    type Chunk = B::Chunk;

    fn announced_len(&self) -> Option<u64> {
        self.body.announced_len()
    }

    async fn next_chunk(&mut self) -> Result<Option<B::Chunk>, UnreadBody> {
        let chunk = self.body.next_chunk().await?;
        if let Some(piece) = &chunk {
            self.check.update(piece.as_ref());
        }
        Ok(chunk)
    }
}

impl App {
    /// Handles a code host's request to receiver `receiver_id`. `body` is read
    /// (up to [`MAX_INCOMING_BODY_BYTES`]) only once the receiver is found and
    /// the headers do not refuse the request, so an unknown receiver or a
    /// request without its signature header costs no read.
    pub async fn ingest<B: BodySource>(
        &self,
        receiver_id: ReceiverId,
        headers: &HeaderMap,
        body: B,
    ) -> Result<IngestAnswer, AppError> {
        let record = self
            .ingest_receiver(receiver_id)
            .await
            .inspect_err(|_| metrics::record_receiver_request("unknown", "rejected"))?;
        let kind = stored_kind(&record)?;
        let answer = self.ingest_into(&record, kind, headers, body).await;
        metrics::record_receiver_request(kind.as_str(), ingest_result(&answer));
        answer
    }

    /// [`App::ingest`] once the receiver is found.
    async fn ingest_into(
        &self,
        record: &ReceiverRecord,
        kind: CodeHostKind,
        headers: &HeaderMap,
        mut body: impl BodySource,
    ) -> Result<IngestAnswer, AppError> {
        let receiver_id = record.id;
        let redacted = redact_headers(kind, headers);
        let creds = credentials::for_verification(self.cipher(), record, Timestamp::now())?;
        let precheck = match precheck(kind, &creds, headers) {
            Ok(precheck) => precheck,
            Err(error) => {
                let log = unverified_row(receiver_id, redacted, Vec::new());
                return Err(self.refuse_unverified(log, &error, true).await);
            }
        };
        let verified = match precheck {
            Precheck::Verified(verified) => {
                let body = match read_body(&mut body, None).await {
                    Ok(body) => body,
                    Err(not_read) => {
                        return Err(self.refuse_not_read(receiver_id, redacted, not_read).await);
                    }
                };
                (verified, body)
            }
            Precheck::NeedsBody(mut check) => {
                if body
                    .announced_len()
                    .is_some_and(|len| len > MAX_INCOMING_BODY_BYTES as u64)
                {
                    let log = unverified_row(receiver_id, redacted, Vec::new());
                    return Err(self.refuse_unread(log, UnreadBody::TooLarge).await);
                }
                let mut hold = self.inner.unverified.admit(receiver_id)?;
                let mut signed = Signed {
                    body: &mut body,
                    check: &mut check,
                };
                let body = match read_body(&mut signed, Some(&mut hold)).await {
                    Ok(body) => body,
                    Err(not_read) => {
                        return Err(self.refuse_not_read(receiver_id, redacted, not_read).await);
                    }
                };
                match check.finish(Timestamp::now()) {
                    // The body is verified: it no longer counts against the budget.
                    Ok(verified) => (verified, body),
                    Err(error) => {
                        let mut log = unverified_row(receiver_id, redacted, start_of(&body));
                        log.body_truncated = body.len() > UNVERIFIED_BODY_KEPT;
                        // The full body goes before its reservation does.
                        drop(body);
                        drop(hold);
                        return Err(self.refuse_unverified(log, &error, false).await);
                    }
                }
            }
        };
        let (verified, body) = verified;
        let mut log = unverified_row(receiver_id, redacted, body);
        log.verified = true;
        log.verification = describe(verified);
        log.status_code = StatusCode::OK.as_u16();
        log.outcome = RequestOutcome::Processed;
        self.process(record, kind, headers, log).await
    }

    /// Logs a request that did not prove itself; the refusal is the answer.
    async fn refuse_unverified(
        &self,
        mut log: NewReceiverRequest,
        error: &VerifyError,
        before_body: bool,
    ) -> AppError {
        // Why, never with what: the error names the check, not a secret.
        tracing::info!(receiver = %log.receiver_id, reason = %error, "receiver request refused");
        // The credentials may have changed through another node: the next
        // request reads them afresh.
        self.inner.receivers_seen.forget(log.receiver_id);
        log.verification = error.to_string();
        if before_body {
            log.verification
                .push_str(" (refused before its body was read)");
            log.body_truncated = true;
        }
        self.log_refusal(
            log,
            AppError::unverified(format!("{error}; the request was logged and ignored")),
        )
        .await
    }

    /// Answers a body that was not read to its end: refused for room (not
    /// logged, see the module docs), or logged as unreadable.
    async fn refuse_not_read(
        &self,
        receiver_id: ReceiverId,
        redacted: Vec<(String, String)>,
        not_read: NotRead,
    ) -> AppError {
        match not_read {
            NotRead::Busy(busy) => {
                tracing::debug!(receiver = %receiver_id, ?busy, "receiver request refused for room");
                busy.into()
            }
            NotRead::Unread(unread) => {
                let log = unverified_row(receiver_id, redacted, Vec::new());
                self.refuse_unread(log, unread).await
            }
        }
    }

    /// Identifies and normalizes a verified request, and stores its work.
    async fn process(
        &self,
        record: &ReceiverRecord,
        kind: CodeHostKind,
        headers: &HeaderMap,
        mut log: NewReceiverRequest,
    ) -> Result<IngestAnswer, AppError> {
        let normalized = identify(kind, headers, &log.body).and_then(|incoming| {
            log.event_name = Some(incoming.event_name.clone());
            log.delivery_id = incoming.delivery_id;
            normalize(kind, &record.urn, &incoming.event_name, &log.body)
        });
        let normalized = match normalized {
            Ok(normalized) => normalized,
            Err(error) => return Err(self.refuse_payload(log, error).await),
        };
        let work = match normalized {
            Normalized::Ping => {
                log.outcome = RequestOutcome::Ping;
                let logged = self.receiver_store().record_request(log).await?;
                return Ok(IngestAnswer::Logged(logged));
            }
            Normalized::Ignored { reason } => return self.ignore(kind, log, reason).await,
            Normalized::Push(pushes) => Ingest {
                events: plan::push_events(&self.catalogue().current(), record.id, &pushes)
                    .map_err(|e| AppError::internal("a normalized push was refused", &e))?,
                request: log,
                changesets: None,
            },
            Normalized::Changeset(observation) => Ingest {
                request: log,
                events: Vec::new(),
                changesets: Some(plan::changeset_work(
                    self.catalogue().current(),
                    record.id,
                    observation,
                )),
            },
        };
        // The store takes the events; the hooks after its commit need the
        // pushes' payloads (the changeset events it publishes are no pushes).
        let pushes: Vec<Vec<u8>> = work.events.iter().map(|e| e.payload.clone()).collect();
        let outcome = self.receiver_store().ingest(work).await?;
        if !outcome.duplicate {
            self.after_publish(outcome.deliveries, pushes.iter().map(Vec::as_slice));
        }
        Ok(IngestAnswer::Logged(outcome.request))
    }

    /// Logs an event kind Herald does not handle, answered so that the host
    /// does not retry it.
    async fn ignore(
        &self,
        kind: CodeHostKind,
        mut log: NewReceiverRequest,
        reason: String,
    ) -> Result<IngestAnswer, AppError> {
        let status = ignored_status(kind);
        log.outcome = RequestOutcome::Ignored;
        log.status_code = status;
        log.message = Some(reason);
        let logged = self.receiver_store().record_request(log).await?;
        Ok(if status == StatusCode::NO_CONTENT.as_u16() {
            IngestAnswer::NoContent
        } else {
            IngestAnswer::Logged(logged)
        })
    }

    /// Logs a request whose body could not be read; the error is its answer.
    async fn refuse_unread(&self, mut log: NewReceiverRequest, unread: UnreadBody) -> AppError {
        let (outcome, status, error, note) = match unread {
            UnreadBody::TooLarge => {
                let limit = MAX_INCOMING_BODY_BYTES / (1024 * 1024);
                (
                    RequestOutcome::TooLarge,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    AppError::payload_too_large(format!(
                        "the body is over {limit} MiB, the most a receiver accepts"
                    )),
                    format!("not checked: the body is over {limit} MiB"),
                )
            }
            UnreadBody::TimedOut => (
                RequestOutcome::Invalid,
                StatusCode::REQUEST_TIMEOUT,
                AppError::body_timeout("the request body did not arrive within the read timeout"),
                "not checked: the body did not arrive in time".to_owned(),
            ),
            UnreadBody::Broken(reason) => (
                RequestOutcome::Invalid,
                StatusCode::BAD_REQUEST,
                AppError::unreadable_body(format!("the request body could not be read: {reason}")),
                "not checked: the body could not be read".to_owned(),
            ),
        };
        log.outcome = outcome;
        log.status_code = status.as_u16();
        log.verification = note;
        log.body_truncated = true;
        self.log_refusal(log, error).await
    }

    /// Logs a verified request whose payload could not be read; the error
    /// (a 400 in HTTP terms) is its answer.
    async fn refuse_payload(&self, mut log: NewReceiverRequest, error: IngestError) -> AppError {
        log.outcome = RequestOutcome::Invalid;
        log.status_code = StatusCode::BAD_REQUEST.as_u16();
        log.message = Some(error.to_string());
        let refusal = match error {
            IngestError::Json(_) => AppError::invalid_json(error.to_string()),
            other => AppError::invalid_payload(other.to_string()),
        };
        self.log_refusal(log, refusal).await
    }

    /// Records a refused request: the refusal is the answer, unless the log
    /// row could not be written, which is then the failure to report.
    async fn log_refusal(&self, log: NewReceiverRequest, refusal: AppError) -> AppError {
        let logged = if log.verified {
            self.receiver_store().record_request(log).await
        } else {
            self.record_unverified(log).await
        };
        match logged {
            Ok(_) => refusal,
            Err(error) => error.into(),
        }
    }
}

/// The `result` label of a receiver's answer.
fn ingest_result(answer: &Result<IngestAnswer, AppError>) -> &'static str {
    match answer {
        Ok(IngestAnswer::Logged(logged)) => metrics::receiver_result(logged.outcome),
        Ok(IngestAnswer::NoContent) => "ignored",
        Err(error) => match error.kind {
            ErrorKind::Unverified => "unverified",
            ErrorKind::TooLarge => "too_large",
            _ => "rejected",
        },
    }
}

/// `hmac_sha256 (current secret)`, for the log.
fn describe(verified: Verified) -> String {
    let method = serde_json::to_value(verified.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match verified.key {
        Some(KeyUsed::Current) => format!("{method} (current secret)"),
        Some(KeyUsed::Previous) => format!("{method} (previous secret, in its grace period)"),
        None => method,
    }
}

/// The part of an unverified body its log row keeps, in a buffer of its own
/// so that the whole body can be freed.
fn start_of(body: &[u8]) -> Vec<u8> {
    body[..body.len().min(UNVERIFIED_BODY_KEPT)].to_vec()
}

impl App {
    /// Logs a request that did not prove itself, bounded: its headers cut,
    /// its body at most [`UNVERIFIED_BODY_KEPT`], and only the newest
    /// `unverified_kept_per_receiver` such rows kept for its receiver.
    async fn record_unverified(
        &self,
        mut log: NewReceiverRequest,
    ) -> Result<ReceiverRequestSummary, herald_store::StoreError> {
        truncate_headers(&mut log.headers);
        if log.body.len() > UNVERIFIED_BODY_KEPT {
            log.body = start_of(&log.body);
            log.body_truncated = true;
        }
        let keep = self.limits().ingest.unverified_kept_per_receiver;
        self.receiver_store().record_unverified(log, keep).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use herald_core::cipher::SecretCipher;
    use herald_delivery::DeliveryConfig;
    use herald_store::{NewRepository, RepositoryId, RepositoryRecord, RepositoryWrite};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::monitors::MonitorsConfig;
    use crate::receivers::ReceiverCreate;
    use crate::stores::StoreChoice;
    use crate::{AppConfig, Limits, Retention, RunningApp};

    const TOKEN: &str = "gitlab-token";
    /// The repository GitLab's push fixture names, under the receiver's URN.
    const PUSHED: &str = "gitlab.example.com/mike/diaspora";

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../herald-ingest/tests/fixtures/code-hosts/gitlab")
            .join(name);
        std::fs::read(path).unwrap()
    }

    fn gitlab_headers(event: &str, delivery_id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-gitlab-token", TOKEN.parse().unwrap());
        headers.insert("x-gitlab-event", event.parse().unwrap());
        headers.insert("x-gitlab-event-uuid", delivery_id.parse().unwrap());
        headers
    }

    async fn start(dir: &Path) -> RunningApp {
        let config = AppConfig {
            store: StoreChoice::Sqlite(dir.join("herald.db")),
            cipher: SecretCipher::new(&SecretCipher::generate_key()).unwrap(),
            secret_key_file: dir.join("secret.key"),
            delivery: DeliveryConfig::default(),
            limits: Limits::default(),
            retention: Retention {
                max_age: Duration::from_secs(3600),
                purge_interval: Duration::from_secs(3600),
                idempotency_ttl: Duration::from_secs(3600),
            },
            monitors: MonitorsConfig {
                // Only a notification fetches again within the test.
                fetch_interval: Duration::from_secs(3600),
                ..MonitorsConfig::new(dir.join("mirrors"), None)
            },
            external_url: "https://herald.example.com".to_owned(),
        };
        App::start(config, CancellationToken::new()).await.unwrap()
    }

    /// A watched repository named as the push names it, fetched once. Its
    /// source does not exist: a fetch that fails still sets `last_fetched_at`,
    /// which is all this test reads.
    async fn watched_repository(app: &App, dir: &Path) -> RepositoryRecord {
        let source = dir.join("no-such-source").display().to_string();
        let monitors = &app.inner.monitors;
        let id = RepositoryId::new();
        let new = NewRepository {
            id,
            name: PUSHED.to_owned(),
            source_sealed: app.inner.cipher.seal(
                source.as_bytes(),
                &herald_core::cipher::SealedColumn::RepositorySource.of(id.0),
            ),
            source_display: source,
            branches: None,
            fetch_interval: None,
        };
        let RepositoryWrite::Saved(repo) = monitors.store().create_repository(new).await.unwrap()
        else {
            panic!("the repository was not created");
        };
        monitors.sync_repository(repo.id).await.unwrap().unwrap()
    }

    async fn last_fetched(app: &App, repo: &RepositoryRecord) -> Option<Timestamp> {
        let store = app.inner.monitors.store();
        store
            .get_repository(repo.id)
            .await
            .unwrap()
            .unwrap()
            .last_fetched_at
    }

    /// A body that arrives in one piece.
    struct Whole(Option<Vec<u8>>);

    impl crate::receivers::BodySource for Whole {
        type Chunk = Vec<u8>;

        fn announced_len(&self) -> Option<u64> {
            self.0.as_ref().map(|body| body.len() as u64)
        }

        async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, UnreadBody> {
            Ok(self.0.take())
        }
    }

    async fn ingest(
        app: &App,
        receiver: ReceiverId,
        event: &str,
        id: &str,
        body: &str,
    ) -> RequestOutcome {
        let headers = gitlab_headers(event, id);
        let body = fixture(body);
        match app
            .ingest(receiver, &headers, Whole(Some(body)))
            .await
            .unwrap()
        {
            IngestAnswer::Logged(logged) => logged.outcome,
            IngestAnswer::NoContent => panic!("{event} was ignored"),
        }
    }

    /// The push hook follows the store's verdict: a delivery id the store has
    /// seen (here from a merge request) makes the push a duplicate, and no
    /// fetch follows; a new id publishes it, and the fetch follows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_push_fetches_its_repository_unless_the_store_finds_it_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let running = start(dir.path()).await;
        let app = running.app();
        let receiver = app
            .create_receiver(ReceiverCreate {
                name: None,
                kind: "gitlab".to_owned(),
                urn: "https://gitlab.example.com".to_owned(),
                secret: Some(TOKEN.to_owned()),
                username: None,
                github_legacy_sha1: false,
                gitlab_standard_webhooks: false,
            })
            .await
            .unwrap();
        let id = receiver.receiver.record.id;
        let repo = watched_repository(app, dir.path()).await;
        let baseline = last_fetched(app, &repo).await;
        assert!(baseline.is_some());

        let opened = ingest(
            app,
            id,
            "Merge Request Hook",
            "seen",
            "merge_request.open.json",
        )
        .await;
        assert_eq!(opened, RequestOutcome::Processed);
        let replayed = ingest(app, id, "Push Hook", "seen", "push.json").await;
        assert_eq!(replayed, RequestOutcome::Duplicate);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            last_fetched(app, &repo).await,
            baseline,
            "a duplicate fetches nothing"
        );

        let pushed = ingest(app, id, "Push Hook", "new", "push.json").await;
        assert_eq!(pushed, RequestOutcome::Processed);
        for _ in 0..100 {
            if last_fetched(app, &repo).await > baseline {
                running.stop().await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the push did not fetch its repository");
    }
}
