//! Incoming webhooks from code hosts, without IO: what the server's
//! `/.api/webhooks/<uuid>` endpoint does between reading the body and
//! touching the store.
//!
//! A request goes through, in order:
//! 1. [`verify`](mod@verify): the host's signature, token or basic auth, over
//!    the raw body bytes, before anything is parsed ([`verify()`],
//!    [`ReceiverCredentials`]).
//! 2. [`identify`](mod@identify): the host's event name and delivery id (the
//!    dedupe key), [`identify()`].
//! 3. [`redact`]: the headers as the request log may show them.
//! 4. [`normalize`](mod@normalize): the payload as Herald events
//!    ([`normalize()`]): pushes ([`RepoPush`], the `repo:push` payload),
//!    pull/merge request activity ([`ChangesetObservation`]), pings, or an
//!    ignored event.
//! 5. [`merge`]: [`apply`] folds an observation into the stored changeset
//!    record and says whether to publish `changeset:update` or
//!    `changeset:close`; [`payload`] renders that record as seed 001's
//!    changeset payload.
//!
//! Supporting modules:
//! - [`kind`]: [`CodeHostKind`] and the status for ignored events.
//! - [`credentials`]: a receiver's current and previous credentials, and opt-ins.
//! - [`changeset`]: the normalized fields (state, review and check states, …)
//!   and the record key.
//! - [`push`]: the `repo:push` payload types.
//! - [`repo`]: repository names, host (from the receiver's URN) plus path.
//! - [`error`]: [`IngestError`], for payloads that cannot be read.
//! - `json` (private): JSON pointer helpers and the timestamp formats hosts use.

pub mod changeset;
pub mod credentials;
pub mod error;
pub mod identify;
mod json;
pub mod kind;
pub mod merge;
pub mod normalize;
pub mod payload;
pub mod push;
pub mod redact;
pub mod repo;
pub mod verify;

pub use changeset::{
    ChangesetKey, ChangesetObservation, ChangesetState, CheckState, CommitCheck, Details, Fork,
    Observed, PullRequestObservation, ReviewState, same_commit,
};
pub use credentials::{Credential, KeyUsed, ReceiverCredentials};
pub use error::IngestError;
pub use identify::{Incoming, identify};
pub use kind::{CodeHostKind, UnknownKind, ignored_status};
pub use merge::{Applied, CHANGESET_CLOSE, CHANGESET_UPDATE, ChangesetRecordState, apply};
pub use normalize::{Normalized, normalize};
pub use payload::changeset_payload;
pub use push::{CodeHost, PushCommit, Pusher, REPO_PUSH, RepoPush};
pub use redact::{REDACTED, redact_headers, truncate_headers};
pub use verify::{
    BodyCheck, Precheck, STANDARD_WEBHOOKS_TOLERANCE_SECS, Verified, VerifyError, VerifyMethod,
    precheck, verify, verify_at,
};
