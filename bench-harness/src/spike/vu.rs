//! The virtual users: one thread each, connected before the start, sending requests back to
//! back while the profile has them active; their latencies merged per second.

use std::sync::{Barrier, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{Kind, Spike};
use crate::stages::Profile;
use crate::stats::{self, Second};
use crate::targets::{Rng, Target};

/// Locks `m`, also after a thread panicked holding it (the data stays usable).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds a VU's counts of second `sec` to the run's, and empties them.
fn flush(store: &Mutex<Vec<Second>>, sec: usize, local: &mut Second) {
    if local.hist.is_empty() && local.errors == 0 {
        return;
    }
    if let Some(slot) = lock(store).get_mut(sec) {
        slot.hist.add(&local.hist).expect("same bounds");
        slot.errors += local.errors;
    }
    local.hist.reset();
    local.errors = 0;
}

/// A run's length: `total` seconds, counted in `n_secs` whole seconds.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) total: f64,
    pub(super) n_secs: usize,
}

impl Clock {
    pub(super) fn of(profile: &Profile) -> Clock {
        let total = profile.total().as_secs_f64();
        Clock {
            total,
            n_secs: total.ceil() as usize,
        }
    }

    /// The second `elapsed` falls in (the last one for the time after the end).
    fn second_of(self, elapsed: Duration) -> usize {
        (elapsed.as_secs_f64() as usize).min(self.n_secs - 1)
    }
}

/// What the VU threads share: the run's seconds, the first error, the connections that
/// failed, and the start (every VU connected, then all go at once).
pub(super) struct Shared {
    pub(super) store: Mutex<Vec<Second>>,
    first_error: Mutex<Option<String>>,
    connect_errors: Mutex<u32>,
    pub(super) ready: Barrier,
    pub(super) go: Barrier,
    pub(super) start: OnceLock<Instant>,
}

impl Shared {
    /// For `vus` threads and the thread that samples.
    pub(super) fn new(clock: Clock, vus: usize) -> Shared {
        Shared {
            store: Mutex::new(vec![Second::default(); clock.n_secs]),
            first_error: Mutex::new(None),
            connect_errors: Mutex::new(0),
            ready: Barrier::new(vus + 1),
            go: Barrier::new(vus + 1),
            start: OnceLock::new(),
        }
    }

    /// What the VUs left: the seconds, the first error, the failed connections.
    pub(super) fn into_parts(self) -> (Vec<Second>, Option<String>, u32) {
        fn inner<T>(m: Mutex<T>) -> T {
            m.into_inner().unwrap_or_else(|e| e.into_inner())
        }
        (
            inner(self.store),
            inner(self.first_error),
            inner(self.connect_errors),
        )
    }

    /// Keeps `e` if it is the run's first error.
    fn note(&self, e: String) {
        lock(&self.first_error).get_or_insert(e);
    }

    /// A VU's first connection; a failure is counted and noted, and the VU stays idle.
    fn connect(&self, kind: &Kind) -> Option<Box<dyn Target>> {
        kind.connect()
            .map_err(|e| {
                *lock(&self.connect_errors) += 1;
                self.note(e);
            })
            .ok()
    }
}

/// One virtual user: connects, waits for the start, then sends requests back to back while
/// the profile has it active, each latency counted in the second it completed in.
pub(super) fn virtual_user(spike: &Spike, shared: &Shared, vu: usize, seed: u64, clock: Clock) {
    let mut target = shared.connect(&spike.kind);
    let mut rng = Rng::new(seed.wrapping_add(vu as u64 * 7919));
    let mut local = Second::default();
    shared.ready.wait();
    shared.go.wait();
    let start = *shared.start.get().expect("start set before go");
    let mut cur = 0usize;
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= clock.total {
            break;
        }
        let Some(tg) = target
            .as_mut()
            .filter(|_| (vu as u32) < spike.profile.vus_at(t))
        else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        let (id, temp) = (rng.user(), rng.temperature());
        let t0 = Instant::now();
        let r = tg.call(id, temp);
        let us = t0.elapsed().as_micros() as u64;
        let done = clock.second_of(start.elapsed());
        if done != cur {
            flush(&shared.store, cur, &mut local);
            cur = done;
        }
        match r {
            Ok(()) => stats::record(&mut local.hist, us),
            Err(e) => {
                local.errors += 1;
                shared.note(e);
                // A broken connection is replaced; a refused request is not retried.
                if let Ok(t) = spike.kind.connect() {
                    target = Some(t);
                } else {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    flush(&shared.store, cur, &mut local);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spike::output::writer_rows;
    use crate::stages::Stage;
    use crate::stats::Sample;

    #[test]
    fn seconds_of_a_run() {
        let clock = Clock::of(&Profile {
            start: 2,
            stages: vec![Stage {
                secs: 2.0,
                target: 4,
            }],
        });
        assert_eq!((clock.total, clock.n_secs), (2.0, 2));
        assert_eq!(clock.second_of(Duration::from_millis(1500)), 1);
        assert_eq!(
            clock.second_of(Duration::from_secs(5)),
            1,
            "late completions count in the last second"
        );
        let mut local = Second::default();
        stats::record(&mut local.hist, 100);
        local.errors = 2;
        let store = Mutex::new(vec![Second::default(); 2]);
        flush(&store, 1, &mut local);
        flush(
            &store,
            9,
            &mut Second {
                errors: 1,
                ..Second::default()
            },
        );
        let store = store.into_inner().unwrap();
        assert_eq!((store[1].hist.len(), store[1].errors), (1, 2));
        assert!(local.hist.is_empty() && local.errors == 0);
        assert_eq!(writer_rows(&[]), "");
        let wb = |rows| Sample {
            wb_rows: Some(rows),
            ..Sample::default()
        };
        assert_eq!(writer_rows(&[wb(5), Sample::default(), wb(12)]), "7");
    }
}
