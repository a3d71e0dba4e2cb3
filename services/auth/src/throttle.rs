//! Brute-force protection: failed logins counted per account and per client IP in
//! `auth.login_attempts`, so every instance sees the same counts. Failures beyond a few slow
//! each answer down progressively; past a threshold the key is locked for a while.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;

use crate::config::ThrottleConfig;
use crate::error::AuthError;

pub fn keys(email: &str, ip: Option<IpAddr>) -> Vec<String> {
    let mut keys = vec![format!("email:{}", email.to_lowercase())];
    if let Some(ip) = ip {
        keys.push(format!("ip:{ip}"));
    }
    keys
}

/// When any of `keys` is locked, until when.
pub async fn locked_until<C: GenericClient>(
    c: &C,
    keys: &[String],
) -> Result<Option<DateTime<Utc>>, AuthError> {
    let stmt = c
        .prepare_cached(
            "SELECT max(locked_until) FROM auth.login_attempts \
             WHERE key = ANY($1) AND locked_until > now()",
        )
        .await?;
    Ok(c.query_one(&stmt, &[&keys]).await?.try_get(0)?)
}

/// The state after recording a failure.
pub struct AfterFailure {
    /// Failures of the account within the window.
    pub account_failures: i32,
    /// A key was locked by this failure.
    pub newly_locked: bool,
}

pub async fn record_failure<C: GenericClient>(
    c: &C,
    keys: &[String],
    cfg: &ThrottleConfig,
) -> Result<AfterFailure, AuthError> {
    let window_ms = cfg.window.as_millis() as i64;
    let lock_ms = cfg.lock_for.as_millis() as i64;
    let stmt = c
        .prepare_cached(
            "INSERT INTO auth.login_attempts AS a (key, failures, window_started_at, last_failure_at) \
             SELECT k, 1, now(), now() FROM unnest($1::text[]) AS k \
             ON CONFLICT (key) DO UPDATE SET \
                 failures = CASE WHEN a.window_started_at < now() - $2::int8 * interval '1 millisecond' \
                                 THEN 1 ELSE a.failures + 1 END, \
                 window_started_at = CASE WHEN a.window_started_at < now() - $2::int8 * interval '1 millisecond' \
                                          THEN now() ELSE a.window_started_at END, \
                 last_failure_at = now() \
             RETURNING key, failures, locked_until",
        )
        .await?;
    let rows = c.query(&stmt, &[&keys, &window_ms]).await?;
    let mut account_failures = 0;
    let mut to_lock = Vec::new();
    for r in &rows {
        let key: String = r.try_get(0)?;
        let failures: i32 = r.try_get(1)?;
        let locked: Option<DateTime<Utc>> = r.try_get(2)?;
        let is_ip = key.starts_with("ip:");
        if !is_ip {
            account_failures = failures;
        }
        let threshold = if is_ip {
            cfg.ip_threshold
        } else {
            cfg.account_threshold
        };
        let already = locked.is_some_and(|l| l > Utc::now());
        if failures >= threshold && !already {
            to_lock.push(key);
        }
    }
    if !to_lock.is_empty() {
        c.execute(
            "UPDATE auth.login_attempts SET locked_until = now() + $2::int8 * interval '1 millisecond', \
                    failures = 0, window_started_at = now() \
             WHERE key = ANY($1)",
            &[&to_lock, &lock_ms],
        )
        .await?;
    }
    Ok(AfterFailure {
        account_failures,
        newly_locked: !to_lock.is_empty(),
    })
}

/// A successful login clears the account's count (the IP's stays).
pub async fn record_success<C: GenericClient>(c: &C, email: &str) -> Result<(), AuthError> {
    let key = format!("email:{}", email.to_lowercase());
    let stmt = c
        .prepare_cached("DELETE FROM auth.login_attempts WHERE key = $1 AND locked_until IS NULL")
        .await?;
    c.execute(&stmt, &[&key]).await?;
    Ok(())
}

/// The extra wait before answering the `failures`-th failure of an account: nothing for the
/// first few, then 250 ms doubling per failure, at most 4 s.
pub fn delay(failures: i32, cfg: &ThrottleConfig) -> Duration {
    if failures <= cfg.delay_after {
        return Duration::ZERO;
    }
    let exp = (failures - cfg.delay_after - 1).clamp(0, 5) as u32;
    Duration::from_millis(250 * 2u64.pow(exp)).min(Duration::from_secs(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_then_caps() {
        let cfg = ThrottleConfig {
            window: Duration::from_secs(900),
            account_threshold: 10,
            ip_threshold: 100,
            lock_for: Duration::from_secs(900),
            delay_after: 3,
        };
        let ms: Vec<u128> = (1..=10).map(|f| delay(f, &cfg).as_millis()).collect();
        assert_eq!(ms, vec![0, 0, 0, 250, 500, 1000, 2000, 4000, 4000, 4000]);
    }
}
