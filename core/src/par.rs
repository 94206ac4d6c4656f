//! A run on rayon's pool, with the wait for a free worker inside the run's budget.
//!
//! A parallel call (`rayon::join`, a parallel iterator) made from a thread outside the pool
//! queues its whole work and blocks that thread until a worker is free. Under load (other runs,
//! other users of the global pool) that wait can last seconds, and nothing checks the run's
//! deadline or token meanwhile. So a run started outside the pool first moves onto it as one
//! job ([`in_pool`]): while the job is queued the calling thread checks the budget, and takes
//! the job back, unstarted, once the budget is spent; once a worker runs it, every parallel
//! call inside is a worker's own (split locally, not queued behind others' work). A worker that
//! waits for a half another worker took may still run other work meanwhile (rayon's way of
//! waiting), so a run on a shared pool can end later than its budget by that work.

#![allow(unsafe_code)]

use crate::budget::Budget;
use crate::error::Error;

/// Runs `work` on a worker of rayon's pool and returns its result (a panic in it goes on in
/// this thread). On a worker already (of any pool) it runs here and now. From elsewhere it is
/// queued, and while it waits for a worker the budget is checked every millisecond: once the
/// deadline has passed or the token is cancelled, it is withdrawn before it starts, with the
/// budget's error. A started job is always waited for; it checks the budget itself.
#[cfg(feature = "rayon")]
pub(crate) fn in_pool<R, F>(budget: &Budget<'_>, work: F) -> Result<R, Error>
where
    R: Send,
    F: FnOnce() -> Result<R, Error> + Send,
{
    in_pool_of(None, budget, work)
}

/// [`in_pool`] on `pool` (`None`: rayon's global pool).
#[cfg(feature = "rayon")]
fn in_pool_of<R, F>(
    pool: Option<&rayon::ThreadPool>,
    budget: &Budget<'_>,
    work: F,
) -> Result<R, Error>
where
    R: Send,
    F: FnOnce() -> Result<R, Error> + Send,
{
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::{Arc, Condvar, Mutex, PoisonError};
    use std::time::Duration;

    /// The job's lifecycle, shared by the caller and the pool (it outlives the caller's frame).
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum State {
        Queued,
        Running,
        Done,
        Withdrawn,
    }
    struct Handoff {
        state: Mutex<State>,
        changed: Condvar,
    }
    /// The work and its outcome, on the caller's stack.
    struct Slot<F, R> {
        work: Option<F>,
        outcome: Option<std::thread::Result<R>>,
    }
    /// Runs the slot's work, catching a panic (so that the job always reaches `Done`).
    ///
    /// SAFETY: `slot` points to a live `Slot<F, R>` that nothing else touches meanwhile.
    unsafe fn run_slot<F: FnOnce() -> R, R>(slot: *mut ()) {
        // SAFETY: the caller's promise above.
        let slot = unsafe { &mut *slot.cast::<Slot<F, R>>() };
        if let Some(work) = slot.work.take() {
            slot.outcome = Some(panic::catch_unwind(AssertUnwindSafe(work)));
        }
    }
    fn lock(h: &Handoff) -> std::sync::MutexGuard<'_, State> {
        h.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// The slot's address, sent to the worker.
    struct SlotPtr(*mut ());
    // SAFETY: it is dereferenced only by `run_slot`, on one thread at a time (below), and the
    // work and its result it reaches are `Send`.
    unsafe impl Send for SlotPtr {}
    impl SlotPtr {
        /// (A method, so that the job captures the whole `SlotPtr`, not its field.)
        fn get(self) -> *mut () {
            self.0
        }
    }

    if rayon::current_thread_index().is_some() {
        return work();
    }
    budget.check()?;
    let mut slot: Slot<F, Result<R, Error>> = Slot {
        work: Some(work),
        outcome: None,
    };
    let handoff = Arc::new(Handoff {
        state: Mutex::new(State::Queued),
        changed: Condvar::new(),
    });
    let ptr = SlotPtr((&raw mut slot).cast());
    let run: unsafe fn(*mut ()) = run_slot::<F, Result<R, Error>>;
    let theirs = Arc::clone(&handoff);
    let job = move || {
        let slot = ptr.get();
        {
            let mut state = lock(&theirs);
            if *state != State::Queued {
                // Withdrawn: the caller has returned, its slot is gone; touch nothing of it.
                return;
            }
            *state = State::Running;
        }
        // SAFETY: the state is `Running`, so the caller waits (below) without touching the
        // slot until it reads `Done`: the slot lives, and only this thread uses it meanwhile.
        unsafe { run(slot) };
        *lock(&theirs) = State::Done;
        theirs.changed.notify_one();
    };
    match pool {
        Some(pool) => pool.spawn(job),
        None => rayon::spawn(job),
    }
    let mut state = lock(&handoff);
    loop {
        match *state {
            State::Done => break,
            State::Queued if budget.is_bounded() => {
                if let Err(err) = budget.check() {
                    *state = State::Withdrawn;
                    return Err(err);
                }
                state = handoff
                    .changed
                    .wait_timeout(state, Duration::from_millis(1))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            State::Queued | State::Running | State::Withdrawn => {
                state = handoff
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
    drop(state);
    match slot.outcome {
        Some(Ok(result)) => result,
        Some(Err(panicked)) => panic::resume_unwind(panicked),
        None => Err(Error::internal("a pool job ended without an outcome")),
    }
}

/// Without threads: `work`, here and now.
#[cfg(not(feature = "rayon"))]
pub(crate) fn in_pool<R, F>(_budget: &Budget<'_>, work: F) -> Result<R, Error>
where
    F: FnOnce() -> Result<R, Error>,
{
    work()
}

#[cfg(all(test, feature = "rayon"))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::{in_pool, in_pool_of};
    use crate::budget::{Budget, CancelToken};
    use crate::error::{Error, ErrorCode};

    /// A pool of two workers, both asleep for `hold` (a pool of its own, so that the global
    /// one, which the other tests use, is not held up).
    fn busy_pool(hold: Duration) -> rayon::ThreadPool {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let asleep = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let asleep = Arc::clone(&asleep);
            pool.spawn(move || {
                asleep.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(hold);
            });
        }
        while asleep.load(Ordering::SeqCst) < 2 {
            std::thread::yield_now();
        }
        pool
    }

    #[test]
    fn the_work_runs_on_a_worker_and_its_result_comes_back() {
        let data = [1u32, 2, 3];
        let got = in_pool(&Budget::NONE, || {
            assert!(rayon::current_thread_index().is_some(), "not on a worker");
            Ok(data.iter().sum::<u32>())
        });
        assert_eq!(got.unwrap(), 6);
        let err = in_pool(&Budget::NONE, || Err::<(), _>(Error::internal("x"))).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Internal);
        // On a worker already: on that worker.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (me, there) = pool.install(|| {
            let me = std::thread::current().id();
            (
                me,
                in_pool(&Budget::NONE, || Ok(std::thread::current().id())).unwrap(),
            )
        });
        assert_eq!(me, there);
    }

    #[test]
    fn a_panic_in_the_work_goes_on_in_the_caller() {
        let caught = std::panic::catch_unwind(|| {
            in_pool(&Budget::NONE, || -> Result<(), Error> {
                panic!("in the work")
            })
        });
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"in the work"));
    }

    /// Both workers are busy for a second: a 20 ms budget, or a token cancelled after 20 ms,
    /// withdraws the queued work within milliseconds, and that work never runs.
    #[test]
    fn a_queued_job_is_withdrawn_when_the_budget_runs_out() {
        let pool = busy_pool(Duration::from_secs(1));
        let ran = AtomicUsize::new(0);
        let work = || {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };

        let start = Instant::now();
        let err = in_pool_of(Some(&pool), &Budget::start(Some(20), None), work).unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
        assert!(
            took < Duration::from_millis(300),
            "withdrawn after {took:?}"
        );

        let token = CancelToken::new();
        let stopper = token.clone();
        let start = Instant::now();
        let err = std::thread::scope(|s| {
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                stopper.cancel();
            });
            in_pool_of(Some(&pool), &Budget::start(None, Some(&token)), work).unwrap_err()
        });
        let took = start.elapsed();
        assert_eq!(err.code(), ErrorCode::Cancelled, "{err}");
        assert!(
            took < Duration::from_millis(300),
            "withdrawn after {took:?}"
        );

        // Once the sleepers are done, the two withdrawn jobs are taken and do nothing.
        pool.install(|| ());
        pool.broadcast(|_| ());
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a withdrawn job ran");
        // And the pool runs work again, budget or not.
        in_pool_of(Some(&pool), &Budget::start(Some(60_000), None), work).unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    /// A job that has started is waited for, past the end of its budget: its slot is on the
    /// caller's stack, and only the job itself can stop early (by checking the budget).
    #[test]
    fn a_started_job_is_waited_for() {
        let token = CancelToken::new();
        let got = in_pool(&Budget::start(None, Some(&token)), || {
            token.cancel();
            std::thread::sleep(Duration::from_millis(60));
            Ok(7)
        });
        assert_eq!(got.unwrap(), 7);
    }
}
