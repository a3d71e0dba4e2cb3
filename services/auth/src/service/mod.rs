//! The gRPC `AuthService`: the state every handler shares, token issue, input checks, and the
//! tonic trait, which resolves who a call acts for and hands over to the module that does the
//! work (`login`, `session`, `accounts`).
//!
//! Every RPC is behind the service-credential check (`RequireService`, added where the server
//! is built); calls acting for a user also need that user's token (`acting`).

mod accounts;
pub mod acting;
mod login;
mod session;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use gathering_db::Pool;
use gathering_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::audit::Client;
use crate::config::Config;
use crate::error::AuthError;
use crate::keys::Keys;
use crate::password::HashCost;
use crate::store::{refresh, users};
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
    /// Verifying keys for acting users' tokens.
    pub(crate) key_cache: acting::KeyCache,
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

pub(crate) fn rfc3339(s: &str) -> Result<Option<DateTime<Utc>>, AuthError> {
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
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::logout(self, &acting, r.into_inner()).await)
    }

    async fn logout_all(
        &self,
        r: Request<pb::LogoutAllRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::logout_all(self, &acting, r.into_inner()).await)
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
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::get_user(self, &acting, &r.into_inner().user_id).await)
    }

    async fn list_users(
        &self,
        r: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::UserList>, Status> {
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::list_users(self, &acting, r.into_inner()).await)
    }

    async fn set_role(&self, r: Request<pb::SetRoleRequest>) -> Result<Response<pb::User>, Status> {
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::set_role(self, &acting, r.into_inner()).await)
    }

    async fn set_active(
        &self,
        r: Request<pb::SetActiveRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::set_active(self, &acting, r.into_inner()).await)
    }

    async fn change_password(
        &self,
        r: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::change_password(self, &acting, r.into_inner())
            .await
            .map(|()| pb::ChangePasswordResponse {}))
    }

    async fn list_audit_events(
        &self,
        r: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::AuditEventList>, Status> {
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::list_audit(self, &acting, r.into_inner()).await)
    }

    async fn blacklist_stats(
        &self,
        r: Request<pb::BlacklistStatsRequest>,
    ) -> Result<Response<pb::BlacklistStatsResponse>, Status> {
        let acting = self.acting(r.metadata()).await?;
        ok(AuthApi::blacklist_stats(self, &acting).await)
    }

    async fn record_refusals(
        &self,
        r: Request<pb::RecordRefusalsRequest>,
    ) -> Result<Response<pb::RecordRefusalsResponse>, Status> {
        ok(async {
            let db = self.pool.get().await?;
            let recorded = crate::audit::record_refusals(&db, &r.into_inner().refusals).await?;
            Ok(pb::RecordRefusalsResponse { recorded })
        }
        .await)
    }
}
