//! What requests that have not proved themselves may hold of this node. A
//! body whose signature covers it must be read before it can be checked, so
//! a stranger can make the node hold bytes: at most
//! [`IngestLimits::unverified_budget_bytes`] in all (reserved as the buffer
//! grows, or at once from `Content-Length`), and at most
//! [`IngestLimits::unverified_per_receiver`] bodies per receiver at a time.
//! Beyond them the request is refused before more of it is read: 429 for a
//! busy receiver, 503 for a node out of budget, each with a `Retry-After`.
//!
//! Requests verified by a header (a token, basic auth) never take from the
//! budget: they are verified before their body is read.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use herald_store::ReceiverId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppError;
use crate::receivers::MAX_INCOMING_BODY_BYTES;

/// Bytes all unverified bodies together may hold by default: with the
/// largest body a host sends (25 MiB), two at once and room for small ones.
pub const DEFAULT_UNVERIFIED_BUDGET_BYTES: usize = 64 * 1024 * 1024;
/// Unverified bodies one receiver may be reading at once by default. Every
/// signed request is unverified while its body arrives, and a busy code host
/// sends dozens at once (the incoming benchmark sends 64): a lower count
/// refused genuine traffic. Memory is bounded by the byte budget, not by this.
pub const DEFAULT_UNVERIFIED_PER_RECEIVER: usize = 64;
/// Unverified requests each receiver's log keeps by default.
pub const DEFAULT_UNVERIFIED_KEPT_PER_RECEIVER: u32 = 100;
/// What a refused client is told to wait: bodies in progress are read
/// within the body read timeout, so room comes back within seconds.
pub const BUSY_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Limits on requests to receivers that have not proved themselves yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestLimits {
    /// Bytes of body all unverified requests together may hold in memory.
    pub unverified_budget_bytes: usize,
    /// Unverified bodies one receiver may be reading at once.
    pub unverified_per_receiver: usize,
    /// Unverified requests kept in each receiver's log; older ones are
    /// deleted, and counted in the receiver's `unverified_dropped`.
    pub unverified_kept_per_receiver: u32,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            unverified_budget_bytes: DEFAULT_UNVERIFIED_BUDGET_BYTES,
            unverified_per_receiver: DEFAULT_UNVERIFIED_PER_RECEIVER,
            unverified_kept_per_receiver: DEFAULT_UNVERIFIED_KEPT_PER_RECEIVER,
        }
    }
}

/// Why the front end could not read a request's body.
#[derive(Debug)]
pub enum UnreadBody {
    /// The body is over [`MAX_INCOMING_BODY_BYTES`].
    TooLarge,
    /// The body did not arrive within the read timeout.
    TimedOut,
    /// Reading it failed, for this reason.
    Broken(String),
}

/// A request body as the front end reads it off the connection, piece by
/// piece, so that what is held can be counted as it arrives.
pub trait BodySource: Send {
    type Chunk: AsRef<[u8]> + Send;
    /// The length the client announced (`Content-Length`), if it did.
    fn announced_len(&self) -> Option<u64>;
    /// The next piece of the body; `None` at its end. The front end bounds
    /// the time this takes and answers [`UnreadBody::TimedOut`] past it.
    fn next_chunk(
        &mut self,
    ) -> impl Future<Output = Result<Option<Self::Chunk>, UnreadBody>> + Send;
}

/// The node-wide budget and the per-receiver counts of bodies in progress.
pub(crate) struct UnverifiedBudget {
    bytes: Arc<Semaphore>,
    per_receiver: usize,
    reading: Arc<Mutex<HashMap<ReceiverId, usize>>>,
}

/// Why an unverified request was refused before its body was all read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    Receiver,
    Node,
}

impl From<Busy> for AppError {
    fn from(busy: Busy) -> Self {
        match busy {
            Busy::Receiver => AppError::receiver_busy(
                "this receiver is already reading as many unchecked requests as it may; \
                 retry after the time in Retry-After",
                BUSY_RETRY_AFTER,
            ),
            Busy::Node => AppError::ingest_busy(
                "this node holds as many unchecked request bodies as its budget allows; \
                 retry after the time in Retry-After",
                BUSY_RETRY_AFTER,
            ),
        }
    }
}

impl UnverifiedBudget {
    pub(crate) fn new(limits: &IngestLimits) -> Self {
        Self {
            bytes: Arc::new(Semaphore::new(
                limits.unverified_budget_bytes.min(Semaphore::MAX_PERMITS),
            )),
            per_receiver: limits.unverified_per_receiver.max(1),
            reading: Arc::default(),
        }
    }

    /// Takes one of `receiver`'s places for an unverified body, if it has one free.
    pub(crate) fn admit(&self, receiver: ReceiverId) -> Result<Hold, Busy> {
        let mut reading = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        let count = reading.entry(receiver).or_default();
        if *count >= self.per_receiver {
            return Err(Busy::Receiver);
        }
        *count += 1;
        Ok(Hold {
            bytes: self.bytes.clone(),
            reserved: None,
            _place: Place {
                receiver,
                reading: self.reading.clone(),
            },
        })
    }

    /// Bytes of the budget not reserved now.
    #[cfg(test)]
    fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// What one unverified request holds: its receiver's place and the bytes it
/// reserved. Dropping it gives both back.
pub(crate) struct Hold {
    bytes: Arc<Semaphore>,
    reserved: Option<OwnedSemaphorePermit>,
    _place: Place,
}

impl Hold {
    /// Reserves `more` bytes of the budget, or refuses without waiting.
    fn reserve(&mut self, more: usize) -> Result<(), Busy> {
        if more == 0 {
            return Ok(());
        }
        let more = u32::try_from(more).map_err(|_| Busy::Node)?;
        let permit = self
            .bytes
            .clone()
            .try_acquire_many_owned(more)
            .map_err(|_| Busy::Node)?;
        match &mut self.reserved {
            Some(reserved) => reserved.merge(permit),
            None => self.reserved = Some(permit),
        }
        Ok(())
    }
}

struct Place {
    receiver: ReceiverId,
    reading: Arc<Mutex<HashMap<ReceiverId, usize>>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut reading = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = reading.get_mut(&self.receiver) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                reading.remove(&self.receiver);
            }
        }
    }
}

/// Why a body was not read to its end.
#[derive(Debug)]
pub(crate) enum NotRead {
    Unread(UnreadBody),
    Busy(Busy),
}

/// Reads a whole body, up to [`MAX_INCOMING_BODY_BYTES`]. With a `hold`,
/// every byte of buffer is reserved from the budget before it is allocated
/// (all at once when the length was announced), so the buffer never holds
/// more than the budget granted.
pub(crate) async fn read_body<B: BodySource>(
    body: &mut B,
    mut hold: Option<&mut Hold>,
) -> Result<Vec<u8>, NotRead> {
    let mut buffer = Vec::new();
    if let Some(announced) = body.announced_len() {
        let announced = usize::try_from(announced)
            .ok()
            .filter(|&len| len <= MAX_INCOMING_BODY_BYTES)
            .ok_or(NotRead::Unread(UnreadBody::TooLarge))?;
        grow(&mut buffer, announced, hold.as_deref_mut())?;
    }
    while let Some(chunk) = body.next_chunk().await.map_err(NotRead::Unread)? {
        let chunk = chunk.as_ref();
        let needed = buffer.len() + chunk.len();
        if needed > MAX_INCOMING_BODY_BYTES {
            return Err(NotRead::Unread(UnreadBody::TooLarge));
        }
        if needed > buffer.capacity() {
            // Doubling, as `Vec` would, but with each growth reserved first.
            let capacity = needed
                .max(buffer.capacity() * 2)
                .min(MAX_INCOMING_BODY_BYTES);
            grow(&mut buffer, capacity, hold.as_deref_mut())?;
        }
        buffer.extend_from_slice(chunk);
    }
    Ok(buffer)
}

/// Makes `buffer`'s capacity `capacity`, reserving the growth from `hold` first.
fn grow(buffer: &mut Vec<u8>, capacity: usize, hold: Option<&mut Hold>) -> Result<(), NotRead> {
    let growth = capacity.saturating_sub(buffer.capacity());
    if let Some(hold) = hold {
        hold.reserve(growth).map_err(NotRead::Busy)?;
    }
    buffer.reserve_exact(capacity - buffer.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body in fixed pieces, with or without its length announced.
    struct Pieces {
        pieces: Vec<Vec<u8>>,
        announce: bool,
    }

    impl BodySource for Pieces {
        type Chunk = Vec<u8>;

        fn announced_len(&self) -> Option<u64> {
            self.announce
                .then(|| self.pieces.iter().map(|p| p.len() as u64).sum())
        }

        async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, UnreadBody> {
            Ok((!self.pieces.is_empty()).then(|| self.pieces.remove(0)))
        }
    }

    fn limits(budget: usize, per_receiver: usize) -> IngestLimits {
        IngestLimits {
            unverified_budget_bytes: budget,
            unverified_per_receiver: per_receiver,
            ..IngestLimits::default()
        }
    }

    #[tokio::test]
    async fn a_receiver_has_its_places_and_gets_them_back() {
        let budget = UnverifiedBudget::new(&limits(1024, 2));
        let receiver = ReceiverId::new();
        let first = budget.admit(receiver).unwrap();
        let _second = budget.admit(receiver).unwrap();
        assert_eq!(budget.admit(receiver).err(), Some(Busy::Receiver));
        assert!(
            budget.admit(ReceiverId::new()).is_ok(),
            "others are not held up"
        );
        drop(first);
        assert!(budget.admit(receiver).is_ok());
    }

    #[tokio::test]
    async fn bodies_reserve_what_they_hold_and_give_it_back() {
        let budget = UnverifiedBudget::new(&limits(1000, 8));
        for announce in [true, false] {
            let mut hold = budget.admit(ReceiverId::new()).unwrap();
            let mut body = Pieces {
                pieces: vec![vec![1; 300], vec![2; 300]],
                announce,
            };
            let read = read_body(&mut body, Some(&mut hold)).await.unwrap();
            assert_eq!(read.len(), 600);
            assert!(budget.available() <= 1000 - 600, "{announce}");
            let mut over = Pieces {
                pieces: vec![vec![3; 500]],
                announce,
            };
            let mut other = budget.admit(ReceiverId::new()).unwrap();
            assert!(matches!(
                read_body(&mut over, Some(&mut other)).await,
                Err(NotRead::Busy(Busy::Node))
            ));
            drop((hold, other));
            assert_eq!(budget.available(), 1000);
        }
    }

    #[tokio::test]
    async fn a_body_over_the_maximum_is_refused_by_its_announced_length() {
        let mut body = Pieces {
            pieces: vec![vec![0; MAX_INCOMING_BODY_BYTES + 1]],
            announce: true,
        };
        assert!(matches!(
            read_body(&mut body, None).await,
            Err(NotRead::Unread(UnreadBody::TooLarge))
        ));
    }
}
