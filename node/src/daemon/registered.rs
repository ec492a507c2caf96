//! Answers that wait for the register of reads: a read's record is
//! appended to the register on the loop, and its answer (to a caller of
//! this node or to a peer's query) leaves only once a flush has made that
//! record durable. A crash after an answer therefore never loses the
//! record of the read it answered.
//!
//! The flushes run off the loop, one at a time: the answers that arrive
//! while one runs wait for the next, so a burst of reads shares a flush
//! (as a burst of issues shares one, [`super::Daemon::on_commands`]).

use super::DaemonError;
use libp2p::request_response::ResponseChannel;

/// An answer held until the register is durable.
pub(super) enum Waiting {
    /// For a caller of this node: told whether the register could be
    /// made durable, and answered (or refused) accordingly.
    Caller(Box<dyn FnOnce(Result<(), DaemonError>) + Send>),
    /// A signed answer to a peer's query, sent only if it could.
    Peer(ResponseChannel<Vec<u8>>, Vec<u8>),
}

/// The answers waiting, and whether a flush is running for some of them.
#[derive(Default)]
pub(super) struct Registered {
    /// Waiting for the next flush.
    next: Vec<Waiting>,
    /// Waiting for the flush that runs.
    flushing: Vec<Waiting>,
    running: bool,
}

impl Registered {
    /// Holds an answer until the next flush is done.
    pub(super) fn hold(&mut self, waiting: Waiting) {
        self.next.push(waiting);
    }

    /// Whether a flush should start now: answers wait, and none runs.
    pub(super) fn due(&self) -> bool {
        !self.running && !self.next.is_empty()
    }

    /// A flush starts: the answers waiting so far are its own.
    pub(super) fn start(&mut self) {
        self.flushing = std::mem::take(&mut self.next);
        self.running = true;
    }

    /// The running flush is done: its answers, to release.
    pub(super) fn done(&mut self) -> Vec<Waiting> {
        self.running = false;
        std::mem::take(&mut self.flushing)
    }

    /// Every answer held, whatever flush it waits for (when the store was
    /// flushed in place).
    pub(super) fn all(&mut self) -> Vec<Waiting> {
        self.running = false;
        let mut all = std::mem::take(&mut self.flushing);
        all.append(&mut self.next);
        all
    }

    /// How many answers are held.
    pub(super) fn held(&self) -> usize {
        self.next.len() + self.flushing.len()
    }
}

/// What a caller is told when the register could not be made durable:
/// the read is not answered.
pub(super) fn not_durable(reason: &str) -> DaemonError {
    DaemonError::Internal(format!(
        "the register of reads could not be made durable, so the read is not answered: {reason}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn caller(log: &Arc<Mutex<Vec<(usize, bool)>>>, n: usize) -> Waiting {
        let log = Arc::clone(log);
        Waiting::Caller(Box::new(move |durable| {
            log.lock().unwrap().push((n, durable.is_ok()));
        }))
    }

    fn release(waiting: Vec<Waiting>, result: Result<(), &str>) {
        for w in waiting {
            if let Waiting::Caller(answer) = w {
                answer(result.map_err(not_durable));
            }
        }
    }

    #[test]
    fn answers_held_during_a_flush_wait_for_the_next() {
        let log = Arc::default();
        let mut registered = Registered::default();
        assert!(!registered.due());
        registered.hold(caller(&log, 1));
        assert!(registered.due());
        registered.start();
        assert!(!registered.due(), "one flush at a time");
        // Arrives while the flush runs: its record may not be in it.
        registered.hold(caller(&log, 2));
        assert_eq!(registered.held(), 2);
        release(registered.done(), Ok(()));
        assert_eq!(*log.lock().unwrap(), vec![(1, true)]);
        assert!(registered.due());
        registered.start();
        release(registered.done(), Err("disk full"));
        assert_eq!(*log.lock().unwrap(), vec![(1, true), (2, false)]);
        assert_eq!(registered.held(), 0);
        assert!(!registered.due());
    }

    #[test]
    fn flushed_in_place_releases_everything_held() {
        let log = Arc::default();
        let mut registered = Registered::default();
        registered.hold(caller(&log, 1));
        registered.start();
        registered.hold(caller(&log, 2));
        release(registered.all(), Ok(()));
        assert_eq!(*log.lock().unwrap(), vec![(1, true), (2, true)]);
        assert!(!registered.due());
    }

    #[test]
    fn a_refused_read_says_why() {
        let e = not_durable("No space left on device");
        assert!(e.to_string().contains("not answered"), "{e}");
        assert!(e.to_string().contains("No space left"), "{e}");
    }
}
