-- GatheRing schema, part 1: extensions, schemas, enum types, shared trigger functions.
--
-- Applied by refinery in a single transaction: nothing here may need to run outside one.
-- Conventions used by every later file:
--   * every id and every column that references an id is bigint (Rust i64);
--   * counters are integer (i32) unless stated; aggregate counts in views are bigint (count(*));
--   * timestamps are timestamptz; arrays are text[] NOT NULL DEFAULT '{}';
--   * json is jsonb NOT NULL DEFAULT '{}' (objects) or '[]' (lists).

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;   -- pgvector: vector(1536), HNSW
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public; -- digest(), gen_random_bytes()
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;  -- trigram text-search fallback

-- ---------------------------------------------------------------------------
-- Schemas
-- ---------------------------------------------------------------------------
CREATE SCHEMA IF NOT EXISTS agent;
CREATE SCHEMA IF NOT EXISTS circle;
CREATE SCHEMA IF NOT EXISTS project;
CREATE SCHEMA IF NOT EXISTS communication;
CREATE SCHEMA IF NOT EXISTS memory;
CREATE SCHEMA IF NOT EXISTS review;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS auth;

COMMENT ON SCHEMA agent         IS 'Agents, personas, providers/models, sessions, goals, skills';
COMMENT ON SCHEMA circle        IS 'Circles, members, background tasks, schedules, pipelines';
COMMENT ON SCHEMA project       IS 'Projects, indexed project files, circle links';
COMMENT ON SCHEMA communication IS 'Conversations, messages, direct chat history, notifications';
COMMENT ON SCHEMA memory        IS 'Long-term memories and knowledge base with pgvector embeddings';
COMMENT ON SCHEMA review        IS 'Reviews, review comments, quality metrics and standards';
COMMENT ON SCHEMA audit         IS 'Audit logs, escalations, system and security events';
COMMENT ON SCHEMA auth          IS 'Users, refresh tokens, revocations, signing keys, login throttling';

-- ---------------------------------------------------------------------------
-- Enum types (public, shared across schemas)
-- ---------------------------------------------------------------------------
CREATE TYPE public.agent_role AS ENUM ('lead', 'member', 'specialist', 'reviewer', 'observer');
CREATE TYPE public.message_role AS ENUM ('user', 'assistant', 'system', 'tool');
CREATE TYPE public.task_status AS ENUM ('pending', 'claimed', 'in_progress', 'review', 'changes_requested', 'blocked', 'completed', 'cancelled');
CREATE TYPE public.task_priority AS ENUM ('low', 'medium', 'high', 'critical');
CREATE TYPE public.goal_priority AS ENUM ('low', 'medium', 'high', 'critical');
CREATE TYPE public.review_status AS ENUM ('pending', 'in_progress', 'approved', 'changes_requested', 'rejected');
CREATE TYPE public.review_type AS ENUM ('code', 'architecture', 'security', 'docs', 'quality', 'final');
CREATE TYPE public.memory_scope AS ENUM ('agent', 'circle', 'project', 'global');
CREATE TYPE public.memory_type AS ENUM ('fact', 'preference', 'context', 'decision', 'error', 'feedback', 'learning');
CREATE TYPE public.log_level AS ENUM ('debug', 'info', 'warning', 'error', 'critical');
CREATE TYPE public.circle_status AS ENUM ('stopped', 'starting', 'running', 'stopping');
CREATE TYPE public.conversation_status AS ENUM ('pending', 'active', 'completed', 'cancelled');
CREATE TYPE public.background_task_status AS ENUM ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled', 'timeout');
CREATE TYPE public.scheduled_action_status AS ENUM ('active', 'paused', 'disabled', 'expired');
CREATE TYPE public.schedule_type AS ENUM ('cron', 'interval', 'once', 'event');
CREATE TYPE public.goal_status AS ENUM ('pending', 'active', 'blocked', 'paused', 'completed', 'failed', 'cancelled');

-- ---------------------------------------------------------------------------
-- Shared trigger function: keep updated_at current on every UPDATE.
-- ---------------------------------------------------------------------------
CREATE FUNCTION public.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION public.set_updated_at() IS 'BEFORE UPDATE trigger: sets NEW.updated_at = now()';
