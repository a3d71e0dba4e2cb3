//! The lifecycle every GatheRing service shares, so that the five start, report and stop the
//! same way instead of each writing its own `Started`, `wait` and shutdown sequence.
//!
//! A service builds a [`Lifecycle`] from its name, takes its [`Readiness`] and [`AdminState`]
//! from it, registers what must be stopped with [`Lifecycle::then`] as it starts each part, and
//! finally calls [`Lifecycle::serve`], which hands back a [`Started`] handle.
//!
//! Guarantees once shutdown is asked for, in this order:
//! 1. readiness answers 503 (load balancers and `gathering up` stop sending work);
//! 2. `"<service> shutting down"` is logged, once;
//! 3. each registered step runs to completion, in the order it was registered (a service
//!    registers "stop taking work" before "close the pool");
//! 4. every step runs even when an earlier one failed — a server that failed must not leave
//!    workers or the pool running — and [`Started::wait`] returns the first failure.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use gathering_core::{Readiness, Shutdown};

use crate::AdminState;

type Step<E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send>>;

/// A service being started: its readiness and the ordered steps that stop it.
pub struct Lifecycle<E> {
    service: &'static str,
    readiness: Readiness,
    steps: Vec<(&'static str, Step<E>)>,
}

impl<E: Send + 'static> Lifecycle<E> {
    /// Starts not ready, with nothing to stop.
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            readiness: Readiness::new(),
            steps: Vec::new(),
        }
    }

    /// The service's readiness: set it once the service takes work.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// The admin endpoints' state for this service (`/health/ready` follows the readiness).
    pub fn admin_state(&self) -> AdminState {
        AdminState::new(self.service, self.readiness.clone())
    }

    /// Registers `step` (named for the debug log) to run at shutdown after the steps before it.
    pub fn then(&mut self, name: &'static str, step: impl Future<Output = ()> + Send + 'static) {
        self.then_try(name, async move {
            step.await;
            Ok(())
        });
    }

    /// Like [`Lifecycle::then`], for a step whose failure is the service's result.
    pub fn then_try(
        &mut self,
        name: &'static str,
        step: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        self.steps.push((name, Box::pin(step)));
    }

    /// Spawns the teardown, which waits for `shutdown`; `handle` is what the started service
    /// exposes (its addresses and the like), reachable through the returned [`Started`].
    pub fn serve<T>(self, handle: T, shutdown: Shutdown) -> Started<T, E> {
        let Lifecycle {
            service,
            readiness,
            steps,
        } = self;
        let task = tokio::spawn(async move {
            shutdown.wait().await;
            readiness.set_shutting_down();
            tracing::info!("{service} shutting down");
            let mut first_failure = Ok(());
            for (name, step) in steps {
                let result = step.await;
                tracing::debug!(step = name, ok = result.is_ok(), "{service} stopped a part");
                if first_failure.is_ok() {
                    first_failure = result;
                }
            }
            first_failure
        });
        Started { handle, task }
    }
}

/// A started service: what it exposes (through `Deref`) and its teardown.
pub struct Started<T, E> {
    handle: T,
    task: tokio::task::JoinHandle<Result<(), E>>,
}

impl<T, E: From<tokio::task::JoinError>> Started<T, E> {
    /// Waits until the service has stopped (after its shutdown was triggered): the first
    /// failure of its teardown, or of the teardown task itself.
    pub async fn wait(self) -> Result<(), E> {
        self.task.await?
    }
}

impl<T, E> Deref for Started<T, E> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.handle
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Step(&'static str),
        Join,
    }

    impl From<tokio::task::JoinError> for TestError {
        fn from(_: tokio::task::JoinError) -> Self {
            TestError::Join
        }
    }

    #[tokio::test]
    async fn steps_run_in_order_after_shutdown_and_all_run_after_a_failure() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut lifecycle = Lifecycle::<TestError>::new("test");
        let readiness = lifecycle.readiness().clone();
        readiness.set_ready();
        for name in ["first", "second", "third"] {
            let order = order.clone();
            lifecycle.then_try(name, async move {
                order.lock().map(|mut o| o.push(name)).ok();
                if name == "first" {
                    Err(TestError::Step("first"))
                } else if name == "second" {
                    Err(TestError::Step("second"))
                } else {
                    Ok(())
                }
            });
        }
        let shutdown = Shutdown::new();
        let started = lifecycle.serve(7_u16, shutdown.clone());
        assert_eq!(*started, 7);
        tokio::task::yield_now().await;
        assert!(order.lock().map(|o| o.is_empty()).unwrap_or(false));
        assert!(readiness.is_ready());
        shutdown.trigger();
        assert_eq!(started.wait().await, Err(TestError::Step("first")));
        assert!(!readiness.is_ready());
        let order = order.lock().map(|o| o.clone()).unwrap_or_default();
        assert_eq!(order, ["first", "second", "third"]);
    }
}
