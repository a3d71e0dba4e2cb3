-- The skill catalogue lists only families with tools behind them (issue 16).
--
-- Built: pdf, database, test, analysis, docs, image, monitoring (shared/tools/src/skills/). Their
-- descriptions now say what the tools do, and their permissions are the union of their tools'.
-- Not built, so no longer listed: calendar, email, cloud, social and deploy (an agent that had
-- one enabled loses the enablement row through ON DELETE CASCADE; it had no tools to call).

DELETE FROM agent.skills WHERE name IN ('calendar', 'email', 'cloud', 'social', 'deploy');

UPDATE agent.skills AS s
SET description = v.description,
    required_permissions = v.permissions,
    is_dangerous = v.dangerous
FROM (VALUES
    ('pdf',
     'PDF files of the project: information and metadata, text by page, search, creation of text PDFs.',
     ARRAY['read', 'write'], false),
    ('database',
     'Read-only SQL on the operator-configured PostgreSQL database (GATHERING_SKILL_DATABASE_URL): queries in a read-only transaction with a statement timeout and a row limit, tables and views, table description.',
     ARRAY['read'], false),
    ('test',
     'Tests: detect the runners a project uses (cargo, pytest, npm, go) and run them with a time limit, with parsed results.',
     ARRAY['read', 'execute'], true),
    ('analysis',
     'Code metrics per language (lines, code, comments, functions, complexity estimate) and the dependencies the manifests declare (Cargo.toml, package.json, requirements.txt, pyproject.toml, go.mod).',
     ARRAY['read'], false),
    ('docs',
     'Documentation: outline of Markdown headings, doc comments and docstrings extracted from code, undocumented public items.',
     ARRAY['read'], false),
    ('image',
     'PNG and JPEG images of the project: information, resize, convert, thumbnails.',
     ARRAY['read', 'write'], false),
    ('monitoring',
     'Host figures (CPU, memory, swap, load, uptime, disk), the busiest processes, and HTTP uptime checks through the outbound guard.',
     ARRAY['read', 'network'], false)
) AS v(name, description, permissions, dangerous)
WHERE s.name = v.name;
