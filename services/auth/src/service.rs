//! The gRPC `AuthService`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use gathering_core::secret::constant_time_eq;
use gathering_db::Pool;
use gathering_proto::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::audit::{self, Client, Entry};
use crate::config::Config;
use crate::error::AuthError;
use crate::keys::Keys;
use crate::password::{self, HashCost};
use crate::store::{refresh, revocations, users};
use crate::throttle;
use crate::tokens::{self, Subject};

/// The bootstrap admin's user id (contract §3: `sub = "admin"`).
pub const ADMIN_ID: &str = "admin";

const MAX_PASSWORD: usize = 128;
const MIN_PASSWORD: usize = 8;

pub struct AuthApi {
    pub(crate) pool: Pool,
    pub(crate) config: Arc<Config>,
    pub(crate) keys: Keys,
    /// A hash of a random password at the configured cost: verified against when the e-mail is
    /// unknown, so an unknown e-mail costs the same time as a known one.
    pub(crate) dummy_hash: String,
}

impl AuthApi {
    fn cost(&self) -> HashCost {
        self.config.hash_cost
    }

    /// Issues an access token and a refresh token in `family` (a new family when `None`).
    async fn issue(
        &self,
        c: &impl gathering_db::GenericClient,
        subject: &Subject,
        family: Option<(uuid::Uuid, i64)>,
        client: &Client,
    ) -> Result<pb::TokenPair, AuthError> {
        let key = self.keys.current();
        let ttl = self.config.access_ttl.as_secs() as i64;
        let access = tokens::issue_access(
            &key,
            &self.config.issuer,
            &self.config.audience,
            ttl,
            subject,
        )?;
        let (refresh_token, hash) = tokens::new_refresh_token()?;
        let refresh_ttl = self.config.refresh_ttl.as_secs() as i64;
        let (family_id, parent_id) = match family {
            Some((f, parent)) => (f, Some(parent)),
            None => (uuid::Uuid::new_v4(), None),
        };
        let access_expires_at = Utc
            .timestamp_opt(access.claims.exp, 0)
            .single()
            .unwrap_or_else(Utc::now);
        refresh::insert(
            c,
            &refresh::NewRefresh {
                hash: &hash,
                family: family_id,
                user_id: &subject.user_id,
                parent_id,
                ttl_secs: refresh_ttl,
                access_jti: &access.claims.jti,
                access_expires_at,
                user_agent: client.user_agent.as_deref(),
                ip: client.ip,
            },
        )
        .await?;
        Ok(pb::TokenPair {
            access_token: access.token,
            token_type: "bearer".into(),
            expires_in: ttl,
            refresh_token,
            refresh_expires_in: refresh_ttl,
            user: None,
        })
    }

    fn admin_user(&self) -> Option<pb::User> {
        self.config.admin.as_ref().map(|(email, _)| pb::User {
            id: ADMIN_ID.into(),
            email: email.clone(),
            name: "Administrator".into(),
            role: "admin".into(),
            is_active: true,
            created_at: String::new(),
        })
    }

    async fn login(&self, req: pb::LoginRequest) -> Result<pb::TokenPair, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        let email = req.email.trim().to_lowercase();
        if !gathering_core::email::is_valid(&email) || req.password.len() > 1024 {
            // No such account can exist; answering at once reveals nothing.
            return Err(AuthError::BadCredentials);
        }
        let db = self.pool.get().await?;
        let keys = throttle::keys(&email, client.ip);
        if let Some(until) = throttle::locked_until(&db, &keys).await? {
            let retry_after = (until - Utc::now())
                .to_std()
                .unwrap_or(Duration::from_secs(1));
            audit::record_logged(
                &db,
                &client,
                &[Entry {
                    event_type: "auth_locked_out",
                    severity: "warning",
                    user_id: None,
                    message: format!("Login refused while locked: {email}"),
                    details: json!({"email": email}),
                }],
            )
            .await;
            return Err(AuthError::Locked { retry_after });
        }

        // Exactly one password verification on every path.
        let admin =
            self.config.admin.as_ref().filter(|(admin_email, _)| {
                constant_time_eq(admin_email.as_bytes(), email.as_bytes())
            });
        let (subject, stored, user) = match admin {
            Some((admin_email, hash)) => (
                Some(Subject {
                    user_id: ADMIN_ID.into(),
                    email: admin_email.clone(),
                    role: "admin".into(),
                }),
                hash.expose().to_owned(),
                None,
            ),
            None => match users::by_email(&db, &email).await? {
                Some(u) if u.is_active => (
                    Some(Subject {
                        user_id: u.id.clone(),
                        email: u.email.clone(),
                        role: u.role.clone(),
                    }),
                    u.password_hash.clone(),
                    Some(u),
                ),
                // Inactive or unknown: verify against the dummy, then fail.
                Some(_) | None => (None, self.dummy_hash.clone(), None),
            },
        };
        let password = req.password;
        let verified = password::verify(password.clone(), stored, self.cost()).await?;
        let Some(subject) = subject.filter(|_| verified.ok) else {
            let after = throttle::record_failure(&db, &keys, &self.config.throttle).await?;
            let mut entries = vec![Entry {
                event_type: "auth_failure",
                severity: "warning",
                user_id: None,
                message: format!("Failed login attempt for: {email}"),
                details: json!({"email": email, "failures": after.account_failures}),
            }];
            if after.newly_locked {
                entries.push(Entry {
                    event_type: "account_locked",
                    severity: "high",
                    user_id: None,
                    message: format!("Login locked after repeated failures: {email}"),
                    details: json!({"email": email, "lock_seconds": self.config.throttle.lock_for.as_secs()}),
                });
            }
            audit::record_logged(&db, &client, &entries).await;
            tokio::time::sleep(throttle::delay(
                after.account_failures,
                &self.config.throttle,
            ))
            .await;
            return Err(AuthError::BadCredentials);
        };

        throttle::record_success(&db, &email).await?;
        if let (true, Some(u)) = (verified.needs_rehash, &user) {
            // Legacy bcrypt or weaker argon2: upgrade now that the password is known.
            let new_hash = password::hash(password, self.cost()).await?;
            users::set_password_hash(&db, &u.id, &new_hash).await?;
            audit::record_logged(
                &db,
                &client,
                &[Entry {
                    event_type: "password_rehashed",
                    severity: "info",
                    user_id: Some(&u.id),
                    message: "Password hash upgraded to argon2id".into(),
                    details: json!({}),
                }],
            )
            .await;
        }
        let mut pair = self.issue(&db, &subject, None, &client).await?;
        pair.user = Some(match user {
            Some(u) => user_to_proto(&u),
            None => self.admin_user().unwrap_or_default(),
        });
        let kind = if subject.user_id == ADMIN_ID {
            "Admin"
        } else {
            "User"
        };
        audit::record_logged(
            &db,
            &client,
            &[
                Entry {
                    event_type: "auth_success",
                    severity: "info",
                    user_id: Some(&subject.user_id),
                    message: format!("{kind} login: {}", subject.email),
                    details: json!({}),
                },
                Entry {
                    event_type: "token_issued",
                    severity: "info",
                    user_id: Some(&subject.user_id),
                    message: "Access and refresh tokens issued".into(),
                    details: json!({"expires_in": pair.expires_in}),
                },
            ],
        )
        .await;
        Ok(pair)
    }
}

pub(crate) fn user_to_proto(u: &users::UserRow) -> pb::User {
    pb::User {
        id: u.id.clone(),
        email: u.email.clone(),
        name: u.name.clone(),
        role: u.role.clone(),
        is_active: u.is_active,
        created_at: u.created_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
    }
}

fn rfc3339(s: &str) -> Result<Option<DateTime<Utc>>, AuthError> {
    if s.is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| AuthError::InvalidInput(format!("'{s}' is not an RFC 3339 time")))
}

pub(crate) fn validate_email(email: &str) -> Result<String, AuthError> {
    let email = email.trim();
    if gathering_core::email::is_valid(email) {
        Ok(email.to_owned())
    } else {
        Err(AuthError::InvalidInput(
            "value is not a valid email address".into(),
        ))
    }
}

pub(crate) fn validate_password(password: &str) -> Result<(), AuthError> {
    let n = password.chars().count();
    if (MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        Ok(())
    } else {
        Err(AuthError::InvalidInput(format!(
            "password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )))
    }
}

impl AuthApi {
    async fn register(&self, req: pb::RegisterRequest) -> Result<pb::User, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        let email = validate_email(&req.email)?;
        validate_password(&req.password)?;
        let name = req.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AuthError::InvalidInput(
                "name must be 1 to 100 characters".into(),
            ));
        }
        if self
            .config
            .admin
            .as_ref()
            .is_some_and(|(a, _)| a.eq_ignore_ascii_case(&email))
        {
            // Hash anyway so this answer takes as long as any other.
            let _ = password::hash(req.password, self.cost()).await?;
            return Err(AuthError::EmailTaken);
        }
        let hash = password::hash(req.password, self.cost()).await?;
        let db = self.pool.get().await?;
        let user = users::create(&db, &email, &name, &hash, "user").await?;
        audit::record_logged(
            &db,
            &client,
            &[Entry {
                event_type: "user_registered",
                severity: "info",
                user_id: Some(&user.id),
                message: format!("User registered: {email}"),
                details: json!({}),
            }],
        )
        .await;
        Ok(user_to_proto(&user))
    }

    async fn refresh(&self, req: pb::RefreshRequest) -> Result<pb::TokenPair, AuthError> {
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

    async fn logout(&self, req: pb::LogoutRequest) -> Result<pb::LogoutResponse, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        if req.jti.is_empty() || req.jti.len() > 64 || req.user_id.is_empty() {
            return Err(AuthError::InvalidInput(
                "jti and user_id are required".into(),
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
    async fn revoke_all(
        &self,
        c: &impl gathering_db::GenericClient,
        user_id: &str,
        reason: &str,
    ) -> Result<u64, AuthError> {
        revocations::revoke_user(c, user_id, reason).await?;
        refresh::revoke_user(c, user_id, reason).await
    }

    async fn logout_all(&self, req: pb::LogoutAllRequest) -> Result<pb::LogoutResponse, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        if req.user_id.is_empty() {
            return Err(AuthError::InvalidInput("user_id is required".into()));
        }
        let mut db = self.pool.get().await?;
        let tx = db.transaction().await?;
        let n = self.revoke_all(&tx, &req.user_id, "logout_all").await?;
        let actor = if req.actor_id.is_empty() {
            req.user_id.as_str()
        } else {
            req.actor_id.as_str()
        };
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

    async fn get_user(&self, id: &str) -> Result<pb::User, AuthError> {
        if id == ADMIN_ID {
            return self.admin_user().ok_or(AuthError::Inactive);
        }
        let db = self.pool.get().await?;
        match users::by_id(&db, id).await? {
            Some(u) => Ok(user_to_proto(&u)),
            None => Err(AuthError::NotFound("User not found".into())),
        }
    }

    async fn set_role(&self, req: pb::SetRoleRequest) -> Result<pb::User, AuthError> {
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
                details: json!({"actor": req.actor_id, "role": req.role}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(user_to_proto(&user))
    }

    async fn set_active(&self, req: pb::SetActiveRequest) -> Result<pb::User, AuthError> {
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
                details: json!({"actor": req.actor_id}),
            }],
        )
        .await?;
        tx.commit().await?;
        Ok(user_to_proto(&user))
    }

    async fn change_password(&self, req: pb::ChangePasswordRequest) -> Result<(), AuthError> {
        if req.user_id == ADMIN_ID {
            return Err(AuthError::Precondition(
                "the bootstrap admin's password is set by ADMIN_PASSWORD_HASH".into(),
            ));
        }
        validate_password(&req.new_password)?;
        let client = Client::from_proto(req.client.as_ref());
        let db = self.pool.get().await?;
        let user = users::by_id(&db, &req.user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(AuthError::Inactive)?;
        let verified = password::verify(
            req.current_password,
            user.password_hash.clone(),
            self.cost(),
        )
        .await?;
        if !verified.ok {
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
        drop(db);
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

    async fn list_audit(
        &self,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::AuditEventList, AuthError> {
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
        let total = rows.first().map(|r| r.get::<_, i64>("total")).unwrap_or(0);
        let events = rows
            .iter()
            .map(|r| pb::AuditEvent {
                id: r.get("id"),
                event_type: r.get("event_type"),
                severity: r.get("severity"),
                user_id: r.get::<_, Option<String>>("user_id").unwrap_or_default(),
                ip_address: r.get::<_, Option<String>>("ip").unwrap_or_default(),
                user_agent: r.get::<_, Option<String>>("user_agent").unwrap_or_default(),
                message: r.get::<_, Option<String>>("message").unwrap_or_default(),
                details_json: r.get("details"),
                request_id: r.get::<_, Option<String>>("request_id").unwrap_or_default(),
                created_at: r.get::<_, DateTime<Utc>>("created_at").to_rfc3339(),
            })
            .collect();
        Ok(pb::AuditEventList {
            events,
            total: total as u64,
        })
    }
}

fn ok<T>(r: Result<T, AuthError>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl pb::auth_service_server::AuthService for AuthApi {
    async fn register(
        &self,
        r: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::User>, Status> {
        ok(AuthApi::register(self, r.into_inner()).await)
    }

    async fn login(&self, r: Request<pb::LoginRequest>) -> Result<Response<pb::TokenPair>, Status> {
        ok(AuthApi::login(self, r.into_inner()).await)
    }

    async fn refresh(
        &self,
        r: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        ok(AuthApi::refresh(self, r.into_inner()).await)
    }

    async fn logout(
        &self,
        r: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        ok(AuthApi::logout(self, r.into_inner()).await)
    }

    async fn logout_all(
        &self,
        r: Request<pb::LogoutAllRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        ok(AuthApi::logout_all(self, r.into_inner()).await)
    }

    async fn get_signing_keys(
        &self,
        _: Request<pb::GetSigningKeysRequest>,
    ) -> Result<Response<pb::SigningKeys>, Status> {
        ok(async {
            let keys = crate::keys::public_keys(&self.pool).await?;
            Ok(pb::SigningKeys {
                keys: keys
                    .into_iter()
                    .map(|k| pb::SigningKey {
                        kid: k.kid,
                        algorithm: "EdDSA".into(),
                        public_key: k.public_key,
                        not_after: k.expires_at.map(|t| t.timestamp()).unwrap_or(0),
                    })
                    .collect(),
                issuer: self.config.issuer.clone(),
                audience: self.config.audience.clone(),
            })
        }
        .await)
    }

    async fn get_user(&self, r: Request<pb::GetUserRequest>) -> Result<Response<pb::User>, Status> {
        ok(AuthApi::get_user(self, &r.into_inner().user_id).await)
    }

    async fn list_users(
        &self,
        r: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::UserList>, Status> {
        let r = r.into_inner();
        ok(async {
            let db = self.pool.get().await?;
            let (rows, total) =
                users::list(&db, i64::from(r.limit.clamp(1, 500)), i64::from(r.offset)).await?;
            Ok(pb::UserList {
                users: rows.iter().map(user_to_proto).collect(),
                total: total as u64,
            })
        }
        .await)
    }

    async fn set_role(&self, r: Request<pb::SetRoleRequest>) -> Result<Response<pb::User>, Status> {
        ok(AuthApi::set_role(self, r.into_inner()).await)
    }

    async fn set_active(
        &self,
        r: Request<pb::SetActiveRequest>,
    ) -> Result<Response<pb::User>, Status> {
        ok(AuthApi::set_active(self, r.into_inner()).await)
    }

    async fn change_password(
        &self,
        r: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        ok(AuthApi::change_password(self, r.into_inner())
            .await
            .map(|()| pb::ChangePasswordResponse {}))
    }

    async fn list_audit_events(
        &self,
        r: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::AuditEventList>, Status> {
        ok(AuthApi::list_audit(self, r.into_inner()).await)
    }

    async fn blacklist_stats(
        &self,
        _: Request<pb::BlacklistStatsRequest>,
    ) -> Result<Response<pb::BlacklistStatsResponse>, Status> {
        ok(async {
            let db = self.pool.get().await?;
            Ok(pb::BlacklistStatsResponse {
                db_active_tokens: revocations::active_count(&db).await? as u64,
            })
        }
        .await)
    }
}
