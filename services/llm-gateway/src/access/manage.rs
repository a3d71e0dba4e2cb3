//! Managing virtual keys and team budgets: the gateway is the only writer of
//! `agent.gateway_keys` and `agent.gateway_teams`; the edge calls these RPCs for admins (and
//! checks the admin role first). Input is validated here again, since the edge is not the only
//! possible caller of the gRPC API.
//!
//! A new or rotated key is generated here and returned once; only its SHA-256 and a hint are
//! stored. Each change commits with a `NOTIFY llm_keys` (a trigger) that makes every gateway
//! reload its keys, and this gateway reloads before answering, so the answer is already true
//! here.

use std::sync::Arc;

use gathering_db::Pool;
use gathering_proto::v1 as pb;
use tonic::Status;

use super::keys::{self, KeyStore, Period};

fn internal(e: impl std::fmt::Display) -> Status {
    tracing::error!(error = %e, "gateway keys");
    Status::internal("internal error")
}

/// Longest lists accepted.
const MAX_MODELS: usize = 64;
const MAX_PATTERN: usize = 200;

/// Columns of a key with its spend in the current day and month (`$1` include revoked, `$2` id).
const KEY_SELECT: &str = "SELECT k.id, k.name, k.owner, k.team, k.key_hint, k.models, \
        (extract(epoch FROM k.expires_at) * 1000)::int8, k.budget_usd, k.budget_period, k.rpm, k.tpm, \
        k.created_by, (extract(epoch FROM k.created_at) * 1000)::int8, \
        (extract(epoch FROM k.rotated_at) * 1000)::int8, (extract(epoch FROM k.revoked_at) * 1000)::int8, \
        COALESCE(d.cost_usd, 0), COALESCE(m.cost_usd, 0), (k.expires_at IS NOT NULL AND k.expires_at <= now()) \
     FROM agent.gateway_keys k \
     LEFT JOIN agent.gateway_spend d ON d.scope = 'key' AND d.subject = k.id::text AND d.period = 'day' \
          AND d.period_start = (now() AT TIME ZONE 'UTC')::date \
     LEFT JOIN agent.gateway_spend m ON m.scope = 'key' AND m.subject = k.id::text AND m.period = 'month' \
          AND m.period_start = date_trunc('month', now() AT TIME ZONE 'UTC')::date \
     WHERE ($1 OR k.revoked_at IS NULL) AND ($2::int8 IS NULL OR k.id = $2) ORDER BY k.id LIMIT 10000";

/// Teams named by a budget or a live key, with spend and key count (`$1` one team or all).
const TEAM_SELECT: &str = "WITH names AS (SELECT name FROM agent.gateway_teams \
        UNION SELECT team FROM agent.gateway_keys WHERE team IS NOT NULL AND revoked_at IS NULL) \
     SELECT n.name, t.budget_usd, t.budget_period, COALESCE(d.cost_usd, 0), COALESCE(m.cost_usd, 0), \
        (SELECT count(*) FROM agent.gateway_keys k WHERE k.team = n.name AND k.revoked_at IS NULL) \
     FROM names n LEFT JOIN agent.gateway_teams t ON t.name = n.name \
     LEFT JOIN agent.gateway_spend d ON d.scope = 'team' AND d.subject = n.name AND d.period = 'day' \
          AND d.period_start = (now() AT TIME ZONE 'UTC')::date \
     LEFT JOIN agent.gateway_spend m ON m.scope = 'team' AND m.subject = n.name AND m.period = 'month' \
          AND m.period_start = date_trunc('month', now() AT TIME ZONE 'UTC')::date \
     WHERE ($1::text IS NULL OR n.name = $1) ORDER BY n.name LIMIT 10000";

fn printable(s: &str, min: usize, max: usize) -> bool {
    let n = s.chars().count();
    (min..=max).contains(&n) && !s.chars().any(char::is_control)
}

/// `[A-Za-z0-9][A-Za-z0-9._-]{0,63}` (as the table's check).
pub fn valid_team(team: &str) -> bool {
    let b = team.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn check_budget(b: &pb::Budget) -> Result<(), Status> {
    if !(b.amount_usd.is_finite() && b.amount_usd > 0.0 && b.amount_usd <= 1e9) {
        return Err(Status::invalid_argument(
            "budget amount must be more than 0 and at most 1e9 USD",
        ));
    }
    if Period::parse(&b.period).is_none() {
        return Err(Status::invalid_argument(
            "budget period must be daily or monthly",
        ));
    }
    Ok(())
}

fn check_create(req: &pb::CreateGatewayKeyRequest) -> Result<(), Status> {
    let bad = |m: &str| Err(Status::invalid_argument(m));
    if !printable(req.name.trim(), 1, 100) {
        return bad("name must be 1-100 characters");
    }
    if !req.owner.is_empty() && !printable(&req.owner, 1, 200) {
        return bad("owner must be at most 200 characters");
    }
    if !req.team.is_empty() && !valid_team(&req.team) {
        return bad(
            "team must be 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit",
        );
    }
    if req.models.len() > MAX_MODELS {
        return bad("at most 64 model patterns");
    }
    for m in &req.models {
        if !printable(m, 1, MAX_PATTERN) || m.chars().any(char::is_whitespace) {
            return bad("model patterns must be 1-200 characters without spaces");
        }
    }
    if req.expires_at_ms < 0 {
        return bad("expires_at must be a time");
    }
    if let Some(b) = &req.budget {
        check_budget(b)?;
    }
    if let Some(l) = &req.limits
        && (i32::try_from(l.rpm).is_err() || i32::try_from(l.tpm).is_err())
    {
        return bad("limits must be at most 2147483647");
    }
    Ok(())
}

fn key_from_row(r: &gathering_db::tokio_postgres::Row) -> Result<pb::GatewayKey, Status> {
    let get = |e: gathering_db::tokio_postgres::Error| internal(e);
    let revoked: Option<i64> = r.try_get(14).map_err(get)?;
    let expired: bool = r.try_get(17).map_err(get)?;
    let amount: Option<f64> = r.try_get(7).map_err(get)?;
    let period: Option<String> = r.try_get(8).map_err(get)?;
    let rpm: Option<i32> = r.try_get(9).map_err(get)?;
    let tpm: Option<i32> = r.try_get(10).map_err(get)?;
    let text = |i: usize| -> Result<String, Status> {
        Ok(r.try_get::<_, Option<String>>(i)
            .map_err(get)?
            .unwrap_or_default())
    };
    let ms = |i: usize| -> Result<i64, Status> {
        Ok(r.try_get::<_, Option<i64>>(i).map_err(get)?.unwrap_or(0))
    };
    let unsigned = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
    Ok(pb::GatewayKey {
        id: r.try_get(0).map_err(get)?,
        name: r.try_get(1).map_err(get)?,
        owner: text(2)?,
        team: text(3)?,
        key_hint: r.try_get(4).map_err(get)?,
        models: r.try_get(5).map_err(get)?,
        expires_at_ms: ms(6)?,
        budget: amount
            .zip(period)
            .map(|(amount_usd, period)| pb::Budget { amount_usd, period }),
        limits: (rpm.is_some() || tpm.is_some()).then(|| pb::KeyLimits {
            rpm: unsigned(rpm),
            tpm: unsigned(tpm),
        }),
        created_by: text(11)?,
        created_at_ms: ms(12)?,
        rotated_at_ms: ms(13)?,
        revoked_at_ms: revoked.unwrap_or(0),
        status: if revoked.is_some() {
            "revoked"
        } else if expired {
            "expired"
        } else {
            "active"
        }
        .to_owned(),
        spent_today_usd: r.try_get(15).map_err(get)?,
        spent_month_usd: r.try_get(16).map_err(get)?,
    })
}

fn team_from_row(r: &gathering_db::tokio_postgres::Row) -> Result<pb::GatewayTeam, Status> {
    let get = |e: gathering_db::tokio_postgres::Error| internal(e);
    let amount: Option<f64> = r.try_get(1).map_err(get)?;
    let period: Option<String> = r.try_get(2).map_err(get)?;
    let keys: i64 = r.try_get(5).map_err(get)?;
    Ok(pb::GatewayTeam {
        team: r.try_get(0).map_err(get)?,
        budget: amount
            .zip(period)
            .map(|(amount_usd, period)| pb::Budget { amount_usd, period }),
        spent_today_usd: r.try_get(3).map_err(get)?,
        spent_month_usd: r.try_get(4).map_err(get)?,
        keys: u32::try_from(keys).unwrap_or(u32::MAX),
    })
}

#[derive(Clone)]
pub struct KeyAdmin {
    pool: Pool,
    keys: Arc<KeyStore>,
}

impl KeyAdmin {
    pub fn new(pool: Pool, keys: Arc<KeyStore>) -> KeyAdmin {
        KeyAdmin { pool, keys }
    }

    async fn fetch(&self, id: i64) -> Result<pb::GatewayKey, Status> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_opt(KEY_SELECT, &[&true, &Some(id)])
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::not_found(format!("Gateway key {id} not found")))?;
        key_from_row(&row)
    }

    /// Applies a committed change here at once (the trigger tells the other gateways).
    async fn reload(&self) -> Result<(), Status> {
        self.keys.reload(&self.pool).await.map_err(internal)
    }

    pub async fn create(
        &self,
        req: pb::CreateGatewayKeyRequest,
    ) -> Result<pb::GatewayKeySecret, Status> {
        check_create(&req)?;
        let new = keys::generate().map_err(|_| internal("no randomness"))?;
        let models: Vec<String> = if req.models.is_empty() {
            vec!["*".to_owned()]
        } else {
            req.models.clone()
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let budget = req.budget.as_ref();
        let limit = |v: u32| (v > 0).then(|| i32::try_from(v).unwrap_or(i32::MAX));
        let limits = req.limits.unwrap_or_default();
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_one(
                "INSERT INTO agent.gateway_keys (name, owner, team, key_hash, key_hint, models, \
                     expires_at, budget_usd, budget_period, rpm, tpm, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, \
                     CASE WHEN $7::int8 > 0 THEN to_timestamp($7::int8 / 1000.0) END, \
                     $8, $9, $10, $11, $12) \
                 RETURNING id",
                &[
                    &req.name.trim(),
                    &nonempty(&req.owner),
                    &nonempty(&req.team),
                    &new.hash.as_slice(),
                    &new.hint,
                    &models,
                    &req.expires_at_ms,
                    &budget.map(|b| b.amount_usd),
                    &budget.map(|b| b.period.as_str()),
                    &limit(limits.rpm),
                    &limit(limits.tpm),
                    &nonempty(&req.created_by),
                ],
            )
            .await
            .map_err(internal)?;
        drop(client);
        let id: i64 = row.try_get(0).map_err(internal)?;
        self.reload().await?;
        tracing::info!(key = id, name = %req.name.trim(), team = %req.team, "gateway key created");
        Ok(pb::GatewayKeySecret {
            key: Some(self.fetch(id).await?),
            secret: new.secret,
        })
    }

    pub async fn list(&self, include_revoked: bool) -> Result<pb::GatewayKeyList, Status> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query(KEY_SELECT, &[&include_revoked, &None::<i64>])
            .await
            .map_err(internal)?;
        Ok(pb::GatewayKeyList {
            keys: rows.iter().map(key_from_row).collect::<Result<_, _>>()?,
        })
    }

    /// A new secret for a live key; the old one stops working on every gateway at once.
    pub async fn rotate(&self, id: i64) -> Result<pb::GatewayKeySecret, Status> {
        let new = keys::generate().map_err(|_| internal("no randomness"))?;
        let client = self.pool.get().await.map_err(internal)?;
        let updated = client
            .execute(
                "UPDATE agent.gateway_keys SET key_hash = $2, key_hint = $3, rotated_at = now() \
                 WHERE id = $1 AND revoked_at IS NULL",
                &[&id, &new.hash.as_slice(), &new.hint],
            )
            .await
            .map_err(internal)?;
        drop(client);
        if updated == 0 {
            return Err(Status::not_found(format!(
                "Gateway key {id} not found or revoked"
            )));
        }
        self.reload().await?;
        tracing::info!(key = id, "gateway key rotated");
        Ok(pb::GatewayKeySecret {
            key: Some(self.fetch(id).await?),
            secret: new.secret,
        })
    }

    /// Revokes a key (idempotent: revoking twice keeps the first time).
    pub async fn revoke(&self, id: i64) -> Result<pb::GatewayKey, Status> {
        let client = self.pool.get().await.map_err(internal)?;
        let updated = client
            .execute(
                "UPDATE agent.gateway_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(internal)?;
        drop(client);
        if updated == 0 {
            return Err(Status::not_found(format!("Gateway key {id} not found")));
        }
        self.reload().await?;
        tracing::info!(key = id, "gateway key revoked");
        self.fetch(id).await
    }

    /// Sets (or, without a budget, removes) a team's budget.
    pub async fn set_team(
        &self,
        req: pb::SetGatewayTeamRequest,
    ) -> Result<pb::GatewayTeam, Status> {
        if !valid_team(&req.team) {
            return Err(Status::invalid_argument(
                "team must be 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit",
            ));
        }
        if let Some(b) = &req.budget {
            check_budget(b)?;
        }
        let budget = req.budget.as_ref();
        let client = self.pool.get().await.map_err(internal)?;
        client
            .execute(
                "INSERT INTO agent.gateway_teams AS t (name, budget_usd, budget_period) \
                 VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET budget_usd = EXCLUDED.budget_usd, \
                     budget_period = EXCLUDED.budget_period, updated_at = now()",
                &[
                    &req.team,
                    &budget.map(|b| b.amount_usd),
                    &budget.map(|b| b.period.as_str()),
                ],
            )
            .await
            .map_err(internal)?;
        let row = client
            .query_one(TEAM_SELECT, &[&Some(req.team.as_str())])
            .await
            .map_err(internal)?;
        drop(client);
        self.reload().await?;
        tracing::info!(team = %req.team, budget = ?budget.map(|b| b.amount_usd), "gateway team budget set");
        team_from_row(&row)
    }

    pub async fn list_teams(&self) -> Result<pb::GatewayTeamList, Status> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query(TEAM_SELECT, &[&None::<&str>])
            .await
            .map_err(internal)?;
        Ok(pb::GatewayTeamList {
            teams: rows.iter().map(team_from_row).collect::<Result<_, _>>()?,
        })
    }
}
