-- The email and cloud families are built (issue 16), so V110's removal is undone with a
-- description of what their tools do:
-- - email (shared/tools/src/skills/email): send over SMTP with TLS, list and read over IMAPS, on
--   the servers the operator configures (GATHERING_EMAIL_*); sending asks for confirmation.
-- - cloud (shared/tools/src/skills/cloud): objects of an S3-compatible store in the buckets the
--   operator allows (GATHERING_CLOUD_*), through the outbound guard; deleting asks for
--   confirmation.
-- Permissions are the union of the tools'.

INSERT INTO agent.skills (name, display_name, description, category, required_permissions, version, is_dangerous, is_enabled)
VALUES
    ('email', 'Email',
     'Email on the operator-configured account: send over SMTP with TLS (text, HTML, attachments from the project; asks for confirmation), list folders and messages and read a message over IMAP with TLS (nothing marked read).',
     'communication', ARRAY['network', 'read'], '1.0.0', true, true),
    ('cloud', 'Cloud',
     'Objects of the operator-configured S3-compatible store (AWS S3, MinIO, …) in the buckets it allows: list, get, put, and delete (asks for confirmation), with an object size limit.',
     'devops', ARRAY['network', 'read', 'write', 'delete'], '1.0.0', true, true)
ON CONFLICT (name) DO UPDATE
SET description = EXCLUDED.description,
    category = EXCLUDED.category,
    required_permissions = EXCLUDED.required_permissions,
    is_dangerous = EXCLUDED.is_dangerous,
    is_enabled = EXCLUDED.is_enabled;
