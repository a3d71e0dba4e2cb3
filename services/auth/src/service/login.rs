//! Login and registration.
//!
//! Password hashing is slow on purpose and a failed login is answered after a growing delay,
//! so neither may hold a pooled connection: each step takes a connection for its queries and
//! gives it back before hashing or sleeping. Otherwise a burst of wrong-password logins would
//! hold every connection for seconds and starve every other call of this instance.

use std::time::Duration;

use chrono::Utc;
use gathering_core::secret::constant_time_eq;
use gathering_proto::v1 as pb;
use serde_json::json;

use super::{ADMIN_ID, AuthApi, user_to_proto, validate_email, validate_password};
use crate::audit::{self, Client, Entry};
use crate::error::AuthError;
use crate::password;
use crate::store::users;
use crate::throttle;
use crate::tokens::Subject;

/// Who a login attempt is for, decided before the password is checked.
struct Candidate {
    subject: Option<Subject>,
    stored_hash: String,
    user: Option<users::UserRow>,
}

impl AuthApi {
    /// The account an e-mail names: the bootstrap admin, an active user, or nobody (then the
    /// dummy hash is verified, so every path costs one verification).
    async fn candidate(
        &self,
        db: &impl gathering_db::GenericClient,
        email: &str,
    ) -> Result<Candidate, AuthError> {
        let admin =
            self.config.admin.as_ref().filter(|(admin_email, _)| {
                constant_time_eq(admin_email.as_bytes(), email.as_bytes())
            });
        if let Some((admin_email, hash)) = admin {
            return Ok(Candidate {
                subject: Some(Subject {
                    user_id: ADMIN_ID.into(),
                    email: admin_email.clone(),
                    role: "admin".into(),
                }),
                stored_hash: hash.expose().to_owned(),
                user: None,
            });
        }
        Ok(match users::by_email(db, email).await? {
            Some(u) if u.is_active => Candidate {
                subject: Some(Subject {
                    user_id: u.id.clone(),
                    email: u.email.clone(),
                    role: u.role.clone(),
                }),
                stored_hash: u.password_hash.clone(),
                user: Some(u),
            },
            // Inactive or unknown: verify against the dummy, then fail.
            Some(_) | None => Candidate {
                subject: None,
                stored_hash: self.dummy_hash.clone(),
                user: None,
            },
        })
    }

    pub(super) async fn login(&self, req: pb::LoginRequest) -> Result<pb::TokenPair, AuthError> {
        let client = Client::from_proto(req.client.as_ref());
        let email = req.email.trim().to_lowercase();
        if !gathering_core::email::is_valid(&email) || req.password.len() > 1024 {
            // No such account can exist; answering at once reveals nothing.
            return Err(AuthError::BadCredentials);
        }
        let keys = throttle::keys(&email, client.ip);
        let candidate = {
            let db = self.pool.get().await?;
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
            self.candidate(&db, &email).await?
        };

        // Exactly one password verification on every path, with no connection held.
        let password = req.password;
        let verified =
            password::verify(password.clone(), candidate.stored_hash, self.cost()).await?;
        let Some(subject) = candidate.subject.filter(|_| verified.ok) else {
            let failures = self.record_failure(&keys, &email, &client).await?;
            tokio::time::sleep(throttle::delay(failures, &self.config.throttle)).await;
            return Err(AuthError::BadCredentials);
        };
        // A legacy bcrypt or weaker argon2 hash is upgraded now that the password is known;
        // hashed before a connection is taken.
        let new_hash = match (&candidate.user, verified.needs_rehash) {
            (Some(_), true) => Some(password::hash(password, self.cost()).await?),
            _ => None,
        };
        self.complete_login(subject, candidate.user, new_hash, &email, &client)
            .await
    }

    /// Counts a failed attempt (locking when a threshold is crossed) and audits it; returns
    /// the account's failures within the window, which set the answer's delay.
    async fn record_failure(
        &self,
        keys: &[String],
        email: &str,
        client: &Client,
    ) -> Result<i32, AuthError> {
        let db = self.pool.get().await?;
        let after = throttle::record_failure(&db, keys, &self.config.throttle).await?;
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
        audit::record_logged(&db, client, &entries).await;
        Ok(after.account_failures)
    }

    async fn complete_login(
        &self,
        subject: Subject,
        user: Option<users::UserRow>,
        new_hash: Option<String>,
        email: &str,
        client: &Client,
    ) -> Result<pb::TokenPair, AuthError> {
        let db = self.pool.get().await?;
        throttle::record_success(&db, email).await?;
        if let (Some(hash), Some(u)) = (&new_hash, &user) {
            users::set_password_hash(&db, &u.id, hash).await?;
            audit::record_logged(
                &db,
                client,
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
        let mut pair = self.issue(&db, &subject, None, client).await?;
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
            client,
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

    pub(super) async fn register(&self, req: pb::RegisterRequest) -> Result<pb::User, AuthError> {
        if !self.config.registration_open {
            return Err(AuthError::Forbidden(
                "Registration is closed; an administrator creates accounts".into(),
            ));
        }
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
}
