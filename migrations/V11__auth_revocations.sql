-- Revocation of every token of a user ("log out everywhere", deactivation), and the access
-- token issued with each refresh token, so revoking a refresh family also revokes the access
-- tokens it produced.

CREATE TABLE auth.user_revocations (
    user_id         text PRIMARY KEY,
    -- Access tokens of this user issued before this instant are refused.
    revoked_before  timestamptz NOT NULL,
    reason          text NOT NULL DEFAULT 'logout_all'
);

ALTER TABLE auth.refresh_tokens
    ADD COLUMN access_jti text,
    ADD COLUMN access_expires_at timestamptz;
