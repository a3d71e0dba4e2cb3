//! The job kinds this executor runs. Each domain registers its handlers here; a handler gets
//! the shared dependencies (`Deps`) by clone.

mod background_tasks;
mod circles;
mod pipelines;
mod scheduled;

use gathering_queue::Registry;

use crate::deps::Deps;

/// Every handler of this executor.
pub fn registry(deps: &Deps) -> Registry {
    let mut registry = Registry::new();
    background_tasks::register(&mut registry, deps);
    circles::register(&mut registry, deps);
    pipelines::register(&mut registry, deps);
    scheduled::register(&mut registry, deps);
    registry
}
