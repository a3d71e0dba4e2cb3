//! `auth.users`.

use chrono::{DateTime, Utc};
use gathering_db::GenericClient;
use gathering_db::tokio_postgres::{Error as PgError, Row};

use crate::error::AuthError;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub is_active: bool,
    pub created_at: Option<DateTime<Utc>>,
    pub password_hash: String,
}

fn from_row(r: &Row) -> Result<UserRow, PgError> {
    Ok(UserRow {
        id: r.try_get("external_id")?,
        email: r.try_get("email")?,
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        is_active: r.try_get("is_active")?,
        created_at: r.try_get("created_at")?,
        password_hash: r.try_get("password_hash")?,
    })
}

pub async fn create<C: GenericClient>(
    c: &C,
    email: &str,
    name: &str,
    hash: &str,
    role: &str,
) -> Result<UserRow, AuthError> {
    let row = c
        .query_one(
            "INSERT INTO auth.users (email, name, password_hash, role) VALUES ($1, $2, $3, $4) \
             RETURNING external_id, email, name, role, is_active, created_at, password_hash",
            &[&email, &name, &hash, &role],
        )
        .await
        .map_err(|e| {
            let e = gathering_db::DbError::from(e);
            if e.is_unique_violation() {
                AuthError::EmailTaken
            } else {
                AuthError::Db(e)
            }
        })?;
    Ok(from_row(&row)?)
}

pub async fn by_email<C: GenericClient>(c: &C, email: &str) -> Result<Option<UserRow>, AuthError> {
    let stmt = c
        .prepare_cached(
            "SELECT external_id, email, name, role, is_active, created_at, password_hash \
             FROM auth.users WHERE email_lower = lower($1)",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&email])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?)
}

pub async fn by_id<C: GenericClient>(c: &C, id: &str) -> Result<Option<UserRow>, AuthError> {
    let stmt = c
        .prepare_cached(
            "SELECT external_id, email, name, role, is_active, created_at, password_hash \
             FROM auth.users WHERE external_id = $1",
        )
        .await?;
    Ok(c.query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()?)
}

/// A page of users and the total count, in one query.
pub async fn list<C: GenericClient>(
    c: &C,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserRow>, i64), AuthError> {
    let rows = c
        .query(
            "SELECT external_id, email, name, role, is_active, created_at, password_hash, \
                    count(*) OVER () AS total \
             FROM auth.users ORDER BY created_at, id LIMIT $1 OFFSET $2",
            &[&limit, &offset],
        )
        .await?;
    let total = match rows.first() {
        Some(r) => r.try_get::<_, i64>("total")?,
        None => 0,
    };
    let users = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    Ok((users, total))
}

pub async fn set_role<C: GenericClient>(
    c: &C,
    id: &str,
    role: &str,
) -> Result<Option<UserRow>, AuthError> {
    let row = c
        .query_opt(
            "UPDATE auth.users SET role = $2 WHERE external_id = $1 \
             RETURNING external_id, email, name, role, is_active, created_at, password_hash",
            &[&id, &role],
        )
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn set_active<C: GenericClient>(
    c: &C,
    id: &str,
    active: bool,
) -> Result<Option<UserRow>, AuthError> {
    let row = c
        .query_opt(
            "UPDATE auth.users SET is_active = $2 WHERE external_id = $1 \
             RETURNING external_id, email, name, role, is_active, created_at, password_hash",
            &[&id, &active],
        )
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn set_password_hash<C: GenericClient>(
    c: &C,
    id: &str,
    hash: &str,
) -> Result<(), AuthError> {
    c.execute(
        "UPDATE auth.users SET password_hash = $2, password_changed_at = now() WHERE external_id = $1",
        &[&id, &hash],
    )
    .await?;
    Ok(())
}
