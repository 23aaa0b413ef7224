//! What a JetStream stream holds, read message by message: a test's view
//! of what was stored (calls, dead letters, execution events).

use std::time::Duration;

use olin_proto::v1::{ExecutionEvent, ExecutionEventBatch};

/// The payload of every message stored in `stream`, oldest first.
pub async fn payloads(js: &async_nats::jetstream::Context, stream: &str) -> Vec<bytes::Bytes> {
    let mut stream = js.get_stream(stream).await.unwrap();
    let (first, last, messages) = {
        let info = stream.info().await.unwrap();
        (info.state.first_sequence, info.state.last_sequence, info.state.messages)
    };
    let mut all = Vec::new();
    if messages == 0 {
        return all;
    }
    for seq in first..=last {
        if let Some(m) = read_message(&stream, seq).await {
            all.push(m.payload);
        }
    }
    all
}

/// Every message stored in `stream`, decoded as an `M`.
pub async fn stored<M: olin_proto::Message + Default>(js: &async_nats::jetstream::Context, stream: &str) -> Vec<M> {
    payloads(js, stream).await.into_iter().map(|p| M::decode(p).unwrap()).collect()
}

/// Message `seq` of `stream`, or `None` if there is none (a work queue's
/// acked message). Any other error is tried again: a read that failed must
/// not pass for a missing execution event.
async fn read_message(
    stream: &async_nats::jetstream::stream::Stream,
    seq: u64,
) -> Option<async_nats::jetstream::message::StreamMessage> {
    use async_nats::jetstream::stream::RawMessageErrorKind;
    let mut tries = 0;
    loop {
        match stream.get_raw_message(seq).await {
            Ok(m) => return Some(m),
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return None,
            Err(e) if matches!(e.kind(), RawMessageErrorKind::JetStream(ref js) if js.error_code() == async_nats::jetstream::ErrorCode::NO_MESSAGE_FOUND) =>
            {
                return None;
            }
            Err(e) => {
                tries += 1;
                assert!(tries < 10, "message {seq} could not be read: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Every execution event stored in `OLIN_EVENTS`, whether a message holds
/// a batch of them or one.
pub async fn events(js: &async_nats::jetstream::Context) -> Vec<ExecutionEvent> {
    let payloads = payloads(js, olin_proto::subject::STREAM_EVENTS).await;
    payloads.iter().flat_map(|p| ExecutionEventBatch::events_in(p).unwrap()).collect()
}
