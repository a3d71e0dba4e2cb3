//! The events this crate publishes, always in the transaction of the change they describe,
//! on the contract's topics (§4.1): `circle.*` on `circles` and `circles:{name}`, `task.*` on
//! `tasks` and `circles:{name}`, `conversation.*` on `conversations` and `conversations:{id}`.
//! (Circle task ids are not put in a `tasks:{id}` topic: background tasks use those ids.)

use gathering_events::NewEvent;
use serde_json::{Value, json};

const SOURCE: &str = "circles";

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

pub fn circle(kind: &str, circle_id: i64, name: &str, data: Value) -> NewEvent {
    NewEvent::new(
        kind,
        merge(json!({"circle_id": circle_id, "circle": name}), data),
    )
    .topic("circles")
    .topic(format!("circles:{name}"))
    .source(SOURCE)
}

pub fn task(kind: &str, circle_id: i64, circle: &str, task_id: i64, data: Value) -> NewEvent {
    NewEvent::new(
        kind,
        merge(
            json!({"circle_id": circle_id, "circle": circle, "task_id": task_id}),
            data,
        ),
    )
    .topic("tasks")
    .topic(format!("circles:{circle}"))
    .source(SOURCE)
}

pub fn conversation(kind: &str, conversation_id: i64, data: Value) -> NewEvent {
    NewEvent::new(
        kind,
        merge(json!({"conversation_id": conversation_id}), data),
    )
    .topic("conversations")
    .topic(format!("conversations:{conversation_id}"))
    .source(SOURCE)
}

/// A `task.*` event about the circle's tasks in general (a conflict resolved).
pub fn tasks(kind: &str, circle_id: i64, circle: &str, data: Value) -> NewEvent {
    NewEvent::new(
        kind,
        merge(json!({"circle_id": circle_id, "circle": circle}), data),
    )
    .topic("tasks")
    .topic(format!("circles:{circle}"))
    .source(SOURCE)
}
