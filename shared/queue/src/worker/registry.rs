//! Handlers by job kind.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::context::{HandlerResult, JobContext};
use crate::backoff::Backoff;

pub(crate) type BoxedHandler =
    Arc<dyn Fn(JobContext) -> BoxFuture<'static, HandlerResult> + Send + Sync>;

/// How jobs of one kind run.
#[derive(Debug, Clone, Copy, Default)]
pub struct KindOptions {
    /// The handler is cancelled and the attempt fails after this long.
    pub timeout: Option<Duration>,
    pub backoff: Backoff,
}

#[derive(Clone)]
pub(crate) struct Registration {
    pub handler: BoxedHandler,
    pub options: KindOptions,
}

/// The handlers a worker knows, by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: HashMap<String, Registration>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind` with default options. Registering a kind twice replaces
    /// nothing: it panics, since it is a programming error.
    pub fn register<F, Fut>(&mut self, kind: &str, handler: F) -> &mut Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.register_with(kind, KindOptions::default(), handler)
    }

    pub fn register_with<F, Fut>(
        &mut self,
        kind: &str,
        options: KindOptions,
        handler: F,
    ) -> &mut Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let handler: BoxedHandler = Arc::new(move |ctx| Box::pin(handler(ctx)));
        let previous = self
            .kinds
            .insert(kind.to_owned(), Registration { handler, options });
        assert!(previous.is_none(), "job kind '{kind}' registered twice");
        self
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Registration> {
        self.kinds.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.kinds.keys().map(String::as_str)
    }
}
