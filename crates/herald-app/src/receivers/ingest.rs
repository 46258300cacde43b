//! A code host's request to a receiver. The order matters: find the receiver,
//! read the body, verify it over the raw bytes before anything parses it, then
//! identify, normalize and hand the work to the store in one transaction with
//! the log row, and only after that commit run the post-commit hooks. Every
//! request that reached a receiver is logged, whatever its answer; every answer
//! but an internal failure comes after its log row is durable.

use std::future::Future;

use herald_core::time::Timestamp;
use herald_ingest::{
    CodeHostKind, IngestError, KeyUsed, Normalized, Verified, identify, ignored_status, normalize,
    redact_headers, verify,
};
use herald_store::{
    Ingest, NewReceiverRequest, ReceiverId, ReceiverRecord, ReceiverRequestId,
    ReceiverRequestSummary, RequestOutcome,
};
use http::{HeaderMap, StatusCode};

use crate::receivers::admin::stored_kind;
use crate::receivers::{MAX_INCOMING_BODY_BYTES, credentials, plan};
use crate::{App, AppError};

/// How much of an unverified body the log keeps: enough to debug a
/// misconfigured secret, too little for strangers to fill the disk with.
pub const UNVERIFIED_BODY_KEPT: usize = 64 * 1024;

/// Why the front end could not read a request's body.
#[derive(Debug)]
pub enum UnreadBody {
    /// The body is over [`MAX_INCOMING_BODY_BYTES`].
    TooLarge,
    /// Reading it failed, for this reason.
    Broken(String),
}

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

impl App {
    /// Handles a code host's request to receiver `receiver_id`. `body` reads the
    /// request's body (up to [`MAX_INCOMING_BODY_BYTES`]); it is awaited only
    /// once the receiver is found, so an unknown receiver costs no read.
    pub async fn ingest(
        &self,
        receiver_id: ReceiverId,
        headers: &HeaderMap,
        body: impl Future<Output = Result<Vec<u8>, UnreadBody>>,
    ) -> Result<IngestAnswer, AppError> {
        let record = self.receiver_record(receiver_id).await?;
        let kind = stored_kind(&record)?;
        let redacted = redact_headers(kind, headers);
        let body = match body.await {
            Ok(body) => body,
            Err(unread) => {
                let log = unverified_row(receiver_id, redacted, Vec::new());
                return Err(self.refuse_unread(log, unread).await);
            }
        };
        let mut log = unverified_row(receiver_id, redacted, body);
        let creds = credentials::for_verification(self.cipher(), &record, Timestamp::now())?;
        match verify(kind, &creds, headers, &log.body) {
            Ok(verified) => {
                log.verified = true;
                log.verification = describe(verified);
                log.status_code = StatusCode::OK.as_u16();
                log.outcome = RequestOutcome::Processed;
                self.process(&record, kind, headers, log).await
            }
            Err(error) => {
                log.verification = error.to_string();
                keep_start_of_body(&mut log);
                self.receiver_store().record_request(log).await?;
                Err(AppError::unverified(format!(
                    "{error}; the request was logged and ignored"
                )))
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
        match self.receiver_store().record_request(log).await {
            Ok(_) => refusal,
            Err(error) => error.into(),
        }
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

fn keep_start_of_body(log: &mut NewReceiverRequest) {
    if log.body.len() > UNVERIFIED_BODY_KEPT {
        log.body.truncate(UNVERIFIED_BODY_KEPT);
        log.body_truncated = true;
    }
}
