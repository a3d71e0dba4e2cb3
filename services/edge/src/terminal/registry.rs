//! Counting open terminals: at most `TERMINAL_MAX_PER_USER` per user and
//! `TERMINAL_MAX_TOTAL` per edge. A [`Slot`] holds one place and gives it back when dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Counts {
    per_user: HashMap<String, usize>,
    total: usize,
}

#[derive(Clone)]
pub struct Registry {
    counts: Arc<Mutex<Counts>>,
    per_user: usize,
    total: usize,
}

/// One open terminal's place.
pub struct Slot {
    counts: Arc<Mutex<Counts>>,
    user: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_user.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_user.remove(&self.user);
            }
        }
    }
}

impl Registry {
    pub fn new(per_user: usize, total: usize) -> Self {
        Self {
            counts: Arc::default(),
            per_user,
            total,
        }
    }

    /// A place for `user`'s new terminal, or why there is none.
    pub fn acquire(&self, user: &str) -> Result<Slot, &'static str> {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.total >= self.total {
            return Err("Too many terminals are open on this server");
        }
        let mine = c.per_user.get(user).copied().unwrap_or(0);
        if mine >= self.per_user {
            return Err("You have too many terminals open");
        }
        c.total += 1;
        c.per_user.insert(user.to_owned(), mine + 1);
        Ok(Slot {
            counts: self.counts.clone(),
            user: user.to_owned(),
        })
    }

    pub fn open(&self) -> usize {
        self.counts.lock().map(|c| c.total).unwrap_or(0)
    }
}
