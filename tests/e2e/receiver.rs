//! A local HTTP receiver that records every request body: what tools and actions under test
//! call, counted.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::any;
use serde_json::Value;

#[derive(Clone, Default)]
pub struct Receiver {
    pub bodies: Arc<Mutex<Vec<Value>>>,
    pub url: String,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let app = Router::new()
            .fallback(any(record))
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { bodies, url }
    }

    pub fn received(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }
}

async fn record(State(bodies): State<Arc<Mutex<Vec<Value>>>>, body: String) -> &'static str {
    bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap_or(Value::String(body)));
    "ok"
}
