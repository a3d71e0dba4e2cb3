//! `gathering admin create-user`: creating a user (an admin, typically) from the command line,
//! straight into the database.

use gathering_db::Pool;

use crate::error::AuthError;
use crate::password::{self, HashCost};
use crate::store::users;

pub struct CreatedUser {
    pub id: String,
    pub email: String,
    pub role: String,
}

pub async fn create_user(
    pool: &Pool,
    email: &str,
    name: &str,
    password_text: String,
    role: &str,
) -> Result<CreatedUser, AuthError> {
    if role != "admin" && role != "user" {
        return Err(AuthError::InvalidInput("role must be admin or user".into()));
    }
    let email = crate::service::validate_email(email)?;
    crate::service::validate_password(&password_text)?;
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(AuthError::InvalidInput(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let hash = password::hash(password_text, HashCost::default()).await?;
    let db = pool.get().await?;
    let user = users::create(&db, &email, name.trim(), &hash, role).await?;
    Ok(CreatedUser {
        id: user.id,
        email: user.email,
        role: user.role,
    })
}
