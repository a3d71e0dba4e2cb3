//! Events: to publish and as read.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::EventError;
use crate::cursor::Cursor;

const MAX_TOPICS: usize = 16;
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// An event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Dotted kind, e.g. `pipeline_run.completed`.
    pub kind: String,
    /// Delivery topics (`pipelines`, `pipelines:3`); empty means every subscriber.
    pub topics: Vec<String>,
    pub payload: Value,
    /// Who published it (service name, agent id…).
    pub source: Option<String>,
}

impl NewEvent {
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            topics: Vec::new(),
            payload,
            source: None,
        }
    }

    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn validate(&self) -> Result<(), EventError> {
        if self.kind.is_empty() || self.kind.len() > 100 {
            return Err(EventError::Invalid(
                "kind must be 1 to 100 characters".into(),
            ));
        }
        if self.topics.len() > MAX_TOPICS
            || self.topics.iter().any(|t| t.is_empty() || t.len() > 200)
        {
            return Err(EventError::Invalid(format!(
                "at most {MAX_TOPICS} topics of 1 to 200 characters"
            )));
        }
        let size = serde_json::to_vec(&self.payload)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_PAYLOAD_BYTES {
            return Err(EventError::Invalid(format!(
                "payload over {MAX_PAYLOAD_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    #[serde(skip)]
    pub xid: i64,
    pub kind: String,
    pub topics: Vec<String>,
    pub payload: Value,
    pub source: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Event {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            xid: self.xid,
            id: self.id,
        }
    }

    /// The contract's delivery rule (§4.1): an event with no topics goes to everyone; a
    /// connection with no subscriptions gets everything; otherwise a subscription must equal
    /// an event topic or the part of a topic before `:` (`agents` matches `agents:1`).
    pub fn matches(&self, subscriptions: &[String]) -> bool {
        if self.topics.is_empty() || subscriptions.is_empty() {
            return true;
        }
        self.topics.iter().any(|topic| {
            let prefix = topic.split(':').next().unwrap_or(topic);
            subscriptions.iter().any(|s| s == topic || s == prefix)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(topics: &[&str]) -> Event {
        Event {
            id: 1,
            xid: 1,
            kind: "k".into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            payload: json!({}),
            source: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn delivery_rule() {
        let subs = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(
            event(&[]).matches(&subs(&["agents"])),
            "no topics: everyone"
        );
        assert!(
            event(&["circles:x"]).matches(&subs(&[])),
            "no subscriptions: everything"
        );
        assert!(event(&["agents:1"]).matches(&subs(&["agents"])), "prefix");
        assert!(event(&["agents:1"]).matches(&subs(&["agents:1"])), "exact");
        assert!(!event(&["agents:1"]).matches(&subs(&["agents:2", "tasks"])));
        assert!(!event(&["agents"]).matches(&subs(&["agents:1"])));
    }

    #[test]
    fn validation() {
        assert!(NewEvent::new("", json!({})).validate().is_err());
        let mut e = NewEvent::new("k", json!({}));
        e.topics = vec!["t".into(); 17];
        assert!(e.validate().is_err());
        assert!(
            NewEvent::new("k", json!({"x": "y".repeat(300_000)}))
                .validate()
                .is_err()
        );
        assert!(NewEvent::new("k", json!({})).topic("a").validate().is_ok());
    }
}
