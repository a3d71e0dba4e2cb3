-- The calendar family is built again (issue 16): iCalendar files of the project
-- (shared/tools/src/skills/calendar.rs), so V110's removal is undone with a description of what
-- the tools do. The git family's description now lists the tools it has (clone, pull and push
-- joined status, diff, log, add, commit, branch and stash).

INSERT INTO agent.skills (name, display_name, description, category, required_permissions, version, is_dangerous, is_enabled)
VALUES
    ('calendar', 'Calendar',
     'iCalendar (.ics) files of the project: create, list (recurring events expanded into their occurrences in a range), update and delete events.',
     'productivity', ARRAY['read', 'write', 'delete'], '1.0.0', false, true)
ON CONFLICT (name) DO UPDATE
SET description = EXCLUDED.description,
    required_permissions = EXCLUDED.required_permissions,
    is_dangerous = EXCLUDED.is_dangerous,
    is_enabled = EXCLUDED.is_enabled;

UPDATE agent.skills
SET description = 'Version control in the project: status, diff, log, add, commit, branches (list, create, delete, checkout), stash, and clone, pull and push with remotes held to the outbound guard''s rules (http(s) or repositories inside the project roots).'
WHERE name = 'git';
