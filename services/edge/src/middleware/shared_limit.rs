//! Rate limits that hold across edge instances, for the low-rate tiers (auth 5/min, write
//! 30/min): a per-instance limiter would let N edges allow N times the contract's limit, which
//! matters most for logins and writes. Each request of those tiers adds one hit to its
//! client's counter in `edge.rate_limits`, keyed by tier, client IP and endpoint, in one-minute
//! windows; one statement (an upsert returning the count with the previous window's) decides. Read and health
//! tiers stay per instance (actix-governor in [`super::rate_limit`]): they are generous and
//! frequent, and a round trip each would cost more than it protects.
//!
//! Guarantees and limits: the count is exact across instances (the upsert is atomic), so the
//! limit holds to the request. The window slides: the previous minute's hits count in
//! proportion to how much of it still lies within the last 60 seconds (the usual sliding-window
//! estimate), so a burst that straddles a minute boundary is limited like any other and a
//! client cannot fit twice the limit around it. If the
//! database cannot be reached the request is let through and counted in
//! `edge_rate_limit_unavailable_total`: those requests would fail on the database anyway.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};
use gathering_db::Pool;
use serde_json::json;

use super::rate_limit::{Tier, endpoint, tier_of};
use crate::state::AppState;

/// One hit in the current window; returns its hits, the previous window's, the seconds
/// elapsed in the current one, its end and now (unix seconds).
const HIT_SQL: &str = "WITH cur AS (\
       INSERT INTO edge.rate_limits AS r (bucket, window_start, hits) \
       VALUES ($1, date_trunc('minute', now()), 1) \
       ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1 \
       RETURNING r.hits, r.window_start) \
     SELECT cur.hits, \
            COALESCE((SELECT p.hits FROM edge.rate_limits p WHERE p.bucket = $1 \
                      AND p.window_start = cur.window_start - interval '1 minute'), 0), \
            extract(epoch FROM now() - cur.window_start)::float8, \
            extract(epoch FROM cur.window_start + interval '1 minute')::int8, \
            extract(epoch FROM now())::int8 \
     FROM cur";

/// A counter key: tier, client and endpoint (bounded: an endpoint beyond 200 characters
/// shares the counter of its first 200, which only makes such odd paths stricter).
fn bucket(tier: Tier, ip: IpAddr, endpoint: &str) -> String {
    let tier = match tier {
        Tier::Auth => "auth",
        Tier::Write => "write",
        Tier::Read => "read",
        Tier::Health => "health",
    };
    let endpoint: String = endpoint.chars().take(200).collect();
    format!("{tier}|{ip}|{endpoint}")
}

/// The outcome for one request.
struct Decision {
    hits: i32,
    previous: i32,
    elapsed: f64,
    reset_at: i64,
    now: i64,
}

impl Decision {
    /// Hits in the last 60 seconds, estimated: the previous window's weighted by the part of
    /// it still inside them, plus the current window's.
    fn recent(&self) -> f64 {
        let left = ((60.0 - self.elapsed) / 60.0).clamp(0.0, 1.0);
        f64::from(self.previous) * left + f64::from(self.hits)
    }
}

async fn hit(pool: &Pool, key: &str) -> Result<Decision, gathering_db::DbError> {
    let client = pool.get().await?;
    let stmt = client.prepare_cached(HIT_SQL).await?;
    let row = client.query_one(&stmt, &[&key]).await?;
    Ok(Decision {
        hits: row.try_get(0)?,
        previous: row.try_get(1)?,
        elapsed: row.try_get(2)?,
        reset_at: row.try_get(3)?,
        now: row.try_get(4)?,
    })
}

fn too_many(limit: u32, d: &Decision) -> HttpResponse {
    let wait = (d.reset_at - d.now).max(1);
    HttpResponse::TooManyRequests()
        .insert_header(("Retry-After", wait.to_string()))
        .insert_header(("X-RateLimit-Limit", limit.to_string()))
        .insert_header(("X-RateLimit-Remaining", "0"))
        .insert_header(("X-RateLimit-Reset", d.reset_at.to_string()))
        .json(json!({ "error": format!("Rate limit exceeded: {limit} per 1 minute") }))
}

/// The middleware: counts auth- and write-tier requests in PostgreSQL.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let limits = &state.config.rate_limits;
    let per_minute = match tier_of(req.method(), req.path()) {
        Some(Tier::Auth) => limits.auth,
        Some(Tier::Write) => limits.write,
        _ => return Ok(next.call(req).await?.map_into_left_body()),
    };
    let tier = tier_of(req.method(), req.path()).unwrap_or(Tier::Write);
    let ip = super::client_ip::resolve(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        &state.config.trusted_proxies,
    )
    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let key = bucket(tier, ip, &endpoint(req.method(), req.path()));
    match hit(&state.pool, &key).await {
        Ok(d) if d.recent() > f64::from(per_minute) => {
            metrics::counter!("edge_rate_limited_total").increment(1);
            Ok(req
                .into_response(too_many(per_minute, &d))
                .map_into_right_body())
        }
        Ok(_) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => {
            metrics::counter!("edge_rate_limit_unavailable_total").increment(1);
            tracing::warn!(error = %e, "shared rate limit unavailable; request let through");
            Ok(next.call(req).await?.map_into_left_body())
        }
    }
}

/// Deletes windows that ended, every minute, so the table stays small. Every edge runs it; the
/// deletes are idempotent and cheap.
pub fn spawn_cleanup(pool: Pool, shutdown: gathering_core::Shutdown) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = shutdown.wait() => return,
            }
            let result = async {
                let client = pool.get().await?;
                client
                    .execute(
                        "DELETE FROM edge.rate_limits WHERE window_start < now() - interval '2 minutes'",
                        &[],
                    )
                    .await?;
                Ok::<_, gathering_db::DbError>(())
            }
            .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, "rate-limit cleanup skipped");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_bounded() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            bucket(Tier::Auth, ip, "POST/auth/login"),
            "auth|10.0.0.1|POST/auth/login"
        );
        let long = format!("POST/{}", "x".repeat(5000));
        assert!(bucket(Tier::Write, ip, &long).len() < 250);
    }

    #[test]
    fn the_previous_window_counts_for_the_part_still_recent() {
        let d = |previous, hits, elapsed| Decision {
            hits,
            previous,
            elapsed,
            reset_at: 0,
            now: 0,
        };
        // Five logins at the end of one minute, a sixth 3 s into the next: still six recent.
        assert!(d(5, 1, 3.0).recent() > 5.0);
        // A minute later the old window no longer counts.
        assert_eq!(d(5, 1, 60.0).recent(), 1.0);
        assert_eq!(d(0, 5, 10.0).recent(), 5.0);
        assert!((d(6, 0, 30.0).recent() - 3.0).abs() < 1e-9);
    }
}
