//! Accounts: reading a user, administration (role, activation, listing, audit), and password
//! changes. Every call acts for the user whose access token it carries (see `acting`).

use chrono::{DateTime, Utc};
use gathering_proto::v1 as pb;
use serde_json::json;

use super::acting::Acting;
use super::{ADMIN_ID, AuthApi, rfc3339, user_to_proto, validate_password};
use crate::audit::{self, Client, Entry};
use crate::error::AuthError;
use crate::password;
use crate::store::{revocations, users};

impl AuthApi {
    pub(super) async fn get_user(&self, acting: &Acting, id: &str) -> Result<pb::User, AuthError> {
        if !acting.may_act_for(id) {
            return Err(AuthError::Forbidden("Admin access required".into()));
        }
        if id == ADMIN_ID {
            return self.admin_user().ok_or(AuthError::Inactive);
        }
        let db = self.pool.get().await?;
        match users::by_id(&db, id).await? {
            Some(u) => Ok(user_to_proto(&u)),
            None => Err(AuthError::NotFound("User not found".into())),
        }
    }

    pub(super) async fn set_role(
        &self,
        acting: &Acting,
        req: pb::SetRoleRequest,
    ) -> Result<pb::User, AuthError> {
        acting.require_admin()?;
        if req.role != "admin" && req.role != "user" {
            return Err(AuthError::InvalidInput("role must be admin or user".into()));
        }
        if req.user_id == ADMIN_ID {
            return Err(AuthError::Precondition(
                "the bootstrap admin is configured by environment".into(),
            ));
        }
        let client = Client::from_proto(req.client.as_ref());
        let mut db = self.pool.get().await?;
        let tx = db.transaction().await?;
        let user = users::set_role(&tx, &req.user_id, &req.role)
            .await?
            .ok_or_else(|| AuthError::NotFound("User not found".into()))?;
        // Tokens carry the role: the old ones must go.
        self.revoke_all(&tx, &user.id, "role_changed").await?;
        audit::record(
            &tx,
            &client,
            &[Entry {
                event_type: "role_changed",
                severity: "warning",
                user_id: Some(&user.id),
                message: format!("Role set to {}", req.role),
                details: json!({"actor": acting.user_id(), "role": req.role}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(user_to_proto(&user))
    }

    pub(super) async fn set_active(
        &self,
        acting: &Acting,
        req: pb::SetActiveRequest,
    ) -> Result<pb::User, AuthError> {
        acting.require_admin()?;
        if req.user_id == ADMIN_ID {
            return Err(AuthError::Precondition(
                "the bootstrap admin is configured by environment".into(),
            ));
        }
        let client = Client::from_proto(req.client.as_ref());
        let mut db = self.pool.get().await?;
        let tx = db.transaction().await?;
        let user = users::set_active(&tx, &req.user_id, req.is_active)
            .await?
            .ok_or_else(|| AuthError::NotFound("User not found".into()))?;
        let (event_type, verb) = if req.is_active {
            ("user_activated", "activated")
        } else {
            // A deactivated user's sessions end now, not at token expiry.
            self.revoke_all(&tx, &user.id, "deactivated").await?;
            ("user_deactivated", "deactivated")
        };
        audit::record(
            &tx,
            &client,
            &[Entry {
                event_type,
                severity: "warning",
                user_id: Some(&user.id),
                message: format!("User {verb}"),
                details: json!({"actor": acting.user_id()}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(user_to_proto(&user))
    }

    /// Changes the acting user's own password (the current one must verify). No connection is
    /// held while hashing.
    pub(super) async fn change_password(
        &self,
        acting: &Acting,
        req: pb::ChangePasswordRequest,
    ) -> Result<(), AuthError> {
        if req.user_id == ADMIN_ID {
            return Err(AuthError::Precondition(
                "the bootstrap admin's password is set by ADMIN_PASSWORD_HASH".into(),
            ));
        }
        if acting.user_id() != req.user_id && !matches!(acting, Acting::Developer) {
            return Err(AuthError::Forbidden(
                "A password can only be changed by its owner".into(),
            ));
        }
        validate_password(&req.new_password)?;
        let client = Client::from_proto(req.client.as_ref());
        let user = {
            let db = self.pool.get().await?;
            users::by_id(&db, &req.user_id)
                .await?
                .filter(|u| u.is_active)
                .ok_or(AuthError::Inactive)?
        };
        let verified = password::verify(
            req.current_password,
            user.password_hash.clone(),
            self.cost(),
        )
        .await?;
        if !verified.ok {
            let db = self.pool.get().await?;
            audit::record_logged(
                &db,
                &client,
                &[Entry {
                    event_type: "password_change_failed",
                    severity: "warning",
                    user_id: Some(&user.id),
                    message: "Password change refused: wrong current password".into(),
                    details: json!({}),
                }],
            )
            .await;
            return Err(AuthError::BadCredentials);
        }
        let hash = password::hash(req.new_password, self.cost()).await?;
        let mut db = self.pool.get().await?;
        let tx = db.transaction().await?;
        users::set_password_hash(&tx, &user.id, &hash).await?;
        self.revoke_all(&tx, &user.id, "password_changed").await?;
        audit::record(
            &tx,
            &client,
            &[Entry {
                event_type: "password_changed",
                severity: "warning",
                user_id: Some(&user.id),
                message: "Password changed; all tokens revoked".into(),
                details: json!({}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn list_audit(
        &self,
        acting: &Acting,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::AuditEventList, AuthError> {
        acting.require_admin()?;
        let limit = i64::from(req.limit.clamp(1, 500));
        let offset = i64::from(req.offset);
        let none_if_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let (event_type, user_id) = (none_if_empty(&req.event_type), none_if_empty(&req.user_id));
        let (since, until) = (rfc3339(&req.since)?, rfc3339(&req.until)?);
        let db = self.pool.get().await?;
        let rows = db
            .query(
                "SELECT id, event_type, severity, user_id, host(ip_address) AS ip, user_agent, message, \
                        details::text AS details, request_id, created_at, count(*) OVER () AS total \
                 FROM audit.security_events \
                 WHERE ($1::text IS NULL OR event_type = $1) \
                   AND ($2::text IS NULL OR user_id = $2) \
                   AND ($3::timestamptz IS NULL OR created_at >= $3) \
                   AND ($4::timestamptz IS NULL OR created_at < $4) \
                 ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6",
                &[&event_type, &user_id, &since, &until, &limit, &offset],
            )
            .await?;
        let total = match rows.first() {
            Some(r) => r.try_get::<_, i64>("total")?,
            None => 0,
        };
        let events = rows
            .iter()
            .map(|r| {
                let text = |col: &str| -> Result<String, AuthError> {
                    Ok(r.try_get::<_, Option<String>>(col)?.unwrap_or_default())
                };
                Ok(pb::AuditEvent {
                    id: r.try_get("id")?,
                    event_type: r.try_get("event_type")?,
                    severity: r.try_get("severity")?,
                    user_id: text("user_id")?,
                    ip_address: text("ip")?,
                    user_agent: text("user_agent")?,
                    message: text("message")?,
                    details_json: text("details")?,
                    request_id: text("request_id")?,
                    created_at: r.try_get::<_, DateTime<Utc>>("created_at")?.to_rfc3339(),
                })
            })
            .collect::<Result<_, AuthError>>()?;
        Ok(pb::AuditEventList {
            events,
            total: total as u64,
        })
    }

    pub(super) async fn list_users(
        &self,
        acting: &Acting,
        req: pb::ListUsersRequest,
    ) -> Result<pb::UserList, AuthError> {
        acting.require_admin()?;
        let db = self.pool.get().await?;
        let (rows, total) = users::list(
            &db,
            i64::from(req.limit.clamp(1, 500)),
            i64::from(req.offset),
        )
        .await?;
        Ok(pb::UserList {
            users: rows.iter().map(user_to_proto).collect(),
            total: total as u64,
        })
    }

    pub(super) async fn blacklist_stats(
        &self,
        acting: &Acting,
    ) -> Result<pb::BlacklistStatsResponse, AuthError> {
        acting.require_admin()?;
        let db = self.pool.get().await?;
        Ok(pb::BlacklistStatsResponse {
            db_active_tokens: revocations::active_count(&db).await? as u64,
        })
    }
}
