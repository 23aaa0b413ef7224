//! The one queue of a worker's slots: pulled messages in order, waiting
//! slots woken by a push, drained after close.
use std::collections::VecDeque;

use parking_lot::{Condvar, Mutex};

/// The slots' queue of pulled messages: a mutex and a condition variable,
/// so a waiting slot sleeps in the kernel at once (a spinning channel's
/// back-off cost idle slots three `sched_yield`s per call), and a message
/// wakes one slot only when one is waiting.
pub(super) struct Queue<T> {
    state: Mutex<QueueState<T>>,
    ready: Condvar,
}

pub(super) struct QueueState<T> {
    items: VecDeque<T>,
    waiting: usize,
    closed: bool,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(QueueState { items: VecDeque::new(), waiting: 0, closed: false }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Queue<T> {
    pub(super) fn lock(&self) -> parking_lot::MutexGuard<'_, QueueState<T>> {
        self.state.lock()
    }

    /// Queues `item`; gives it back if the queue is closed.
    pub(super) fn push(&self, item: T) -> Result<(), T> {
        let mut state = self.lock();
        if state.closed {
            return Err(item);
        }
        state.items.push_back(item);
        let wake = state.waiting > 0;
        drop(state);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// The next item, waiting for one; `None` once closed and empty.
    pub(super) fn pop(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                return Some(item);
            }
            if state.closed {
                return None;
            }
            state.waiting += 1;
            self.ready.wait(&mut state);
            state.waiting -= 1;
        }
    }

    /// No more items: waiting slots finish what is queued, then stop.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_queue_hands_out_in_order_and_drains_after_close() {
        let queue = Arc::new(Queue::default());
        queue.push(1).unwrap();
        queue.push(2).unwrap();
        assert_eq!(queue.pop(), Some(1));
        let waiter = {
            let queue = queue.clone();
            std::thread::spawn(move || (queue.pop(), queue.pop(), queue.pop()))
        };
        queue.close();
        assert_eq!(queue.push(3), Err(3), "closed: nothing more is taken");
        assert_eq!(waiter.join().unwrap(), (Some(2), None, None), "what was queued still runs, then the slot stops");
    }

    #[test]
    fn a_waiting_slot_is_woken_by_a_push() {
        let queue = Arc::new(Queue::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || queue.pop())
            })
            .collect();
        while queue.lock().waiting < 3 {
            std::thread::yield_now();
        }
        for i in 0..3 {
            queue.push(i).unwrap();
        }
        let mut got: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap().unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
    }
}
