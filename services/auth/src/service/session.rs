//! Sessions: refresh-token rotation (with reuse detection), logout of one token, and logout
//! of every token of a user.

use chrono::{TimeZone, Utc};
use gathering_proto::v1 as pb;
use serde_json::json;

use super::acting::Acting;
use super::{ADMIN_ID, AuthApi};
use crate::audit::{self, Client, Entry};
use crate::error::AuthError;
use crate::store::{refresh, revocations, users};
use crate::tokens::{self, Subject};

impl AuthApi {
    pub(super) async fn refresh(
        &self,
        req: pb::RefreshRequest,
    ) -> Result<pb::TokenPair, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        if req.refresh_token.is_empty() || req.refresh_token.len() > 200 {
            return Err(AuthError::InvalidToken("Invalid refresh token"));
        }
        let hash = tokens::hash_refresh_token(&req.refresh_token);
        let mut db = self.pool.get().await?;
        let tx = db.transaction().await?;
        let Some(found) = refresh::find_for_update(&tx, &hash).await? else {
            return Err(AuthError::InvalidToken("Invalid refresh token"));
        };
        if found.used || found.revoked {
            // A rotated (or revoked) token presented again: it was stolen or replayed. Revoke
            // the whole family, and the access tokens it issued.
            let access = refresh::revoke_family(&tx, found.family, "reuse_detected").await?;
            for a in &access {
                revocations::revoke_token(
                    &tx,
                    &a.jti,
                    a.expires_at,
                    &found.user_id,
                    "refresh_reuse",
                )
                .await?;
            }
            audit::record(&tx, &client, &[Entry {
                event_type: "refresh_token_reuse",
                severity: "critical",
                user_id: Some(&found.user_id),
                message: "Refresh token reuse detected; token family revoked".into(),
                details: json!({"family": found.family.to_string(), "access_tokens_revoked": access.len()}),
            }])
            .await?;
            tx.commit().await?;
            return Err(AuthError::InvalidToken("Refresh token reuse detected"));
        }
        if found.expired {
            return Err(AuthError::InvalidToken("Refresh token expired"));
        }
        let subject = if found.user_id == ADMIN_ID {
            let (email, _) = self.config.admin.as_ref().ok_or(AuthError::Inactive)?;
            Subject {
                user_id: ADMIN_ID.into(),
                email: email.clone(),
                role: "admin".into(),
            }
        } else {
            match users::by_id(&tx, &found.user_id).await? {
                Some(u) if u.is_active => Subject {
                    user_id: u.id,
                    email: u.email,
                    role: u.role,
                },
                _ => return Err(AuthError::Inactive),
            }
        };
        refresh::mark_used(&tx, found.id).await?;
        let pair = self
            .issue(&tx, &subject, Some((found.family, found.id)), &client)
            .await?;
        audit::record(
            &tx,
            &client,
            &[Entry {
                event_type: "token_refreshed",
                severity: "info",
                user_id: Some(&subject.user_id),
                message: "Refresh token rotated".into(),
                details: json!({"family": found.family.to_string()}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// Revokes the acting token itself (and its refresh family): a caller can only log out
    /// the token it presents.
    pub(super) async fn logout(
        &self,
        acting: &Acting,
        req: pb::LogoutRequest,
    ) -> Result<pb::LogoutResponse, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        if req.jti.is_empty() || req.jti.len() > 64 || req.user_id.is_empty() {
            return Err(AuthError::InvalidInput(
                "jti and user_id are required".into(),
            ));
        }
        if let Acting::User(c) = acting
            && (c.jti != req.jti || c.sub != req.user_id)
        {
            return Err(AuthError::Forbidden(
                "Only the presented token can be logged out".into(),
            ));
        }
        let expires_at = Utc
            .timestamp_opt(req.expires_at, 0)
            .single()
            .ok_or_else(|| AuthError::InvalidInput("bad expires_at".into()))?;
        let mut db = self.pool.get().await?;
        let tx = db.transaction().await?;
        let mut access = u32::from(
            revocations::revoke_token(&tx, &req.jti, expires_at, &req.user_id, "logout").await?,
        );
        let mut refresh_count = 0;
        if !req.refresh_token.is_empty() {
            let hash = tokens::hash_refresh_token(&req.refresh_token);
            if let Some(family) = refresh::family_of(&tx, &hash, &req.user_id).await? {
                let others = refresh::revoke_family(&tx, family, "logout").await?;
                refresh_count = 1;
                for a in others.iter().filter(|a| a.jti != req.jti) {
                    access += u32::from(
                        revocations::revoke_token(
                            &tx,
                            &a.jti,
                            a.expires_at,
                            &req.user_id,
                            "logout",
                        )
                        .await?,
                    );
                }
            }
        }
        audit::record(
            &tx,
            &client,
            &[Entry {
                event_type: "logout",
                severity: "info",
                user_id: Some(&req.user_id),
                message: "Token revoked (logout)".into(),
                details: json!({"refresh_family_revoked": refresh_count > 0}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(pb::LogoutResponse {
            revoked_access_tokens: access,
            revoked_refresh_tokens: refresh_count,
        })
    }

    /// Revokes every token of a user (logout everywhere, deactivation, role or password change).
    pub(super) async fn revoke_all(
        &self,
        c: &impl gathering_db::GenericClient,
        user_id: &str,
        reason: &str,
    ) -> Result<u64, AuthError> {
        revocations::revoke_user(c, user_id, reason).await?;
        refresh::revoke_user(c, user_id, reason).await
    }

    pub(super) async fn logout_all(
        &self,
        acting: &Acting,
        req: pb::LogoutAllRequest,
    ) -> Result<pb::LogoutResponse, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        if req.user_id.is_empty() {
            return Err(AuthError::InvalidInput("user_id is required".into()));
        }
        if !acting.may_act_for(&req.user_id) {
            return Err(AuthError::Forbidden("Admin access required".into()));
        }
        let mut db = self.pool.get().await?;
        let tx = db.transaction().await?;
        let n = self.revoke_all(&tx, &req.user_id, "logout_all").await?;
        // The actor is who the token says, not what the request claims.
        let actor = acting.user_id();
        audit::record(
            &tx,
            &client,
            &[Entry {
                event_type: "logout_all",
                severity: "info",
                user_id: Some(&req.user_id),
                message: "All tokens of the user revoked".into(),
                details: json!({"actor": actor, "refresh_tokens_revoked": n}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(pb::LogoutResponse {
            revoked_access_tokens: 0,
            revoked_refresh_tokens: n as u32,
        })
    }
}
