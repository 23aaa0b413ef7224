//! Reading request bodies into memory within two bounds: the request's own
//! cap, and one budget shared by every request of a server, so that many
//! clients sending large bodies at once cannot together take the process's
//! memory. A request that would pass the shared budget is refused at once
//! ([`ReadError::Busy`]: 503 with `Retry-After`), not queued.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bytes all of a server's requests may hold in buffered bodies.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: u64,
}

/// The part of the budget one request holds; given back when dropped, so
/// keep it as long as the body's bytes are kept.
#[derive(Debug, Default)]
pub struct BodyCharge {
    permit: Option<OwnedSemaphorePermit>,
}

/// Why a body was not read.
#[derive(Debug)]
pub enum ReadError<E> {
    /// Larger than the request's cap (413).
    TooLarge {
        /// The cap.
        max: u64,
    },
    /// The server's shared budget is spent (503, retry later).
    Busy {
        /// The budget.
        budget: u64,
    },
    /// Reading failed (the client went away, or the body timed out).
    Read(E),
}

impl BodyBudget {
    /// A budget of `bytes` (at least one byte; a semaphore holds at most
    /// `usize::MAX >> 3` permits).
    pub fn new(bytes: u64) -> Self {
        let permits = usize::try_from(bytes).unwrap_or(usize::MAX).clamp(1, Semaphore::MAX_PERMITS);
        BodyBudget { bytes: Arc::new(Semaphore::new(permits)), total: permits as u64 }
    }

    /// Bytes free now.
    pub fn available(&self) -> u64 {
        self.bytes.available_permits() as u64
    }

    fn charge(&self, charge: &mut BodyCharge, n: usize) -> bool {
        let Ok(n) = u32::try_from(n) else { return false };
        match self.bytes.clone().try_acquire_many_owned(n) {
            Ok(more) => {
                match &mut charge.permit {
                    Some(held) => held.merge(more),
                    None => charge.permit = Some(more),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// Reads `body` into memory: at most `max` bytes (a larger `declared`
/// length is refused before reading), each chunk charged to `budget` as it
/// arrives.
///
/// # Errors
/// [`ReadError`].
pub async fn read_body<S, B, E>(
    body: S,
    declared: Option<u64>,
    max: u64,
    budget: &BodyBudget,
) -> Result<(Bytes, BodyCharge), ReadError<E>>
where
    S: Stream<Item = Result<B, E>>,
    B: Buf,
{
    if declared.is_some_and(|n| n > max) {
        return Err(ReadError::TooLarge { max });
    }
    let mut charge = BodyCharge::default();
    let mut buf = BytesMut::new();
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(ReadError::Read)?;
        let n = chunk.remaining();
        if (buf.len() + n) as u64 > max {
            return Err(ReadError::TooLarge { max });
        }
        if !budget.charge(&mut charge, n) {
            return Err(ReadError::Busy { budget: budget.total });
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let len = part.len();
            buf.extend_from_slice(part);
            chunk.advance(len);
        }
    }
    Ok((buf.freeze(), charge))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, ()>> {
        futures::stream::iter(sizes.iter().map(|n| Ok(Bytes::from(vec![b'x'; *n]))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn bodies_are_held_within_their_cap_and_the_shared_budget() {
        let budget = BodyBudget::new(100);
        let (a, held) = read_body(chunks(&[30, 30]), None, 80, &budget).await.unwrap();
        assert_eq!((a.len(), budget.available()), (60, 40));
        match read_body(chunks(&[30, 30]), None, 80, &budget).await {
            Err(ReadError::Busy { budget: 100 }) => {}
            other => panic!("{:?}", other.map(|(b, _)| b.len())),
        }
        assert_eq!(budget.available(), 40, "what a refused request took is given back");
        assert!(matches!(read_body(chunks(&[40, 50]), None, 80, &budget).await, Err(ReadError::TooLarge { max: 80 })));
        assert_eq!(budget.available(), 40);
        assert!(matches!(read_body(chunks(&[1]), Some(81), 80, &budget).await, Err(ReadError::TooLarge { .. })));
        drop(held);
        assert_eq!(budget.available(), 100);
        let (b, _held) = read_body(chunks(&[80]), None, 80, &budget).await.unwrap();
        assert_eq!(b.len(), 80);
    }
}
