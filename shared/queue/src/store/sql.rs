//! The statements of [`super::Queue`], one per operation.

pub(super) const INSERT_SQL: &str = "
WITH input AS (
    SELECT nextval(pg_get_serial_sequence('queue.jobs', 'id')) AS id, t.*
    FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::int2[], $5::timestamptz[],
                $6::int8[], $7::int4[], $8::text[])
         WITH ORDINALITY AS t(queue, kind, payload, priority, run_at, delay_ms,
                              max_attempts, unique_key, ord)
), inserted AS (
    INSERT INTO queue.jobs (id, queue, kind, payload, priority, run_at, max_attempts, unique_key)
    SELECT id, queue, kind, payload, priority,
           COALESCE(run_at, now() + delay_ms * interval '1 millisecond'), max_attempts, unique_key
    FROM input ORDER BY ord
    ON CONFLICT (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('available', 'running', 'failed')
        DO NOTHING
    RETURNING id
), notified AS (
    SELECT count(pg_notify('queue_' || q, '')) AS n
    FROM (SELECT DISTINCT queue AS q FROM input WHERE $9::bool) qs
)
SELECT input.ord, input.unique_key, inserted.id AS inserted_id, existing.id AS existing_id,
       (SELECT n FROM notified) AS notified
FROM input
LEFT JOIN inserted ON inserted.id = input.id
LEFT JOIN LATERAL (
    SELECT j.id FROM queue.jobs j
    WHERE inserted.id IS NULL AND j.unique_key = input.unique_key
      AND j.state IN ('available', 'running', 'failed')
    LIMIT 1
) existing ON true
ORDER BY input.ord";

/// The claim statement with its `LIMIT` (a bind parameter or a literal; see `CLAIM_ONE_SQL`).
macro_rules! claim_sql {
    ($limit:literal) => {
        concat!(
            "
UPDATE queue.jobs SET
    state = 'running',
    attempt = attempt + 1,
    lease_owner = $2,
    lease_expires_at = now() + $3::int8 * interval '1 millisecond',
    attempted_at = now()
WHERE id IN (
    SELECT id FROM queue.jobs
    WHERE queue = $1 AND state IN ('available', 'failed') AND run_at <= now()
    ORDER BY priority, run_at, id
    LIMIT ",
            $limit,
            "
    FOR UPDATE SKIP LOCKED
) AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL
RETURNING id, queue, kind, payload, priority, attempt, max_attempts, created_at, run_at"
        )
    };
}

// A claim lost in a database crash only makes its jobs available again, so its commit need not
// wait for the WAL flush (`synchronous_commit` off for this statement's own transaction):
// pickup saves an fsync. Same for lease extensions.
pub(super) const CLAIM_SQL: &str = claim_sql!("$4");

// The same claim for one job, with the limit written out: with `LIMIT $4` PostgreSQL never
// trusts a generic plan (it cannot cost an unknown limit) and plans the statement again at every
// execution (measured: `pg_prepared_statements.custom_plans` grows by one per claim), which is
// a good part of a single-row claim's CPU. With `LIMIT 1` the cached generic plan is used.
pub(super) const CLAIM_ONE_SQL: &str = claim_sql!("1");

// Each finished job is found by its primary key and its attempt by its position in the
// arrays: no join with `unnest($1, $2)`. With the join, once the statement's generic plan was
// chosen (statistics taken while few jobs ran), PostgreSQL scanned the running jobs and
// compared each with every finished one (a nested loop: measured 1.9 s for 1,000 completions
// with 2,000 jobs running; batched throughput down from ~27,000 to ~1,700 jobs/s,
// intermittently). `state::text` keeps the partial index on running jobs out of the plan (a
// scan of it is linear in running jobs and their not yet vacuumed entries, per statement);
// what is left is one primary-key lookup per job (~20 ms per 1,000, generic or custom plan).
// Rows are locked in id order (the subquery), as the heartbeat locks them: two statements
// taking overlapping rows in opposite orders would deadlock. A row changed meanwhile is
// rechecked against the whole fence before it is locked.
pub(super) const COMPLETE_SQL: &str = "
UPDATE queue.jobs SET
    state = 'completed', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
WHERE id IN (
    SELECT id FROM queue.jobs
    WHERE id IN (SELECT unnest($1::int8[])) AND lease_owner = $3 AND state::text = 'running'
      AND attempt = ($2::int4[])[array_position($1::int8[], id)]
    ORDER BY id
    FOR UPDATE
)
RETURNING id";

// Single-row mode in one round trip: the finished job's fenced completion and the next claim,
// one statement and one commit (durable: it records a completion). The completion must run
// first (the claim's subquery reads `done` in a one-time filter): a `FOR UPDATE` that meets a
// row updated since its snapshot locks the newest version before rechecking it, so a claim
// may briefly hold another worker's running job; had it already locked its own job, two such
// statements could each wait for the other (a deadlock). Completion first, the claim never
// waits (SKIP LOCKED), so the waits cannot form a cycle.
pub(super) const COMPLETE_AND_CLAIM_SQL: &str = "
WITH done AS (
    UPDATE queue.jobs SET
        state = 'completed', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
    WHERE id = $1 AND attempt = $2 AND lease_owner = $3 AND state = 'running'
    RETURNING id
), next AS (
    UPDATE queue.jobs SET
        state = 'running',
        attempt = attempt + 1,
        lease_owner = $3,
        lease_expires_at = now() + $5::int8 * interval '1 millisecond',
        attempted_at = now()
    WHERE id IN (
        SELECT id FROM queue.jobs
        WHERE queue = $4 AND state IN ('available', 'failed') AND run_at <= now()
          AND (SELECT count(*) FROM done) >= 0
        ORDER BY priority, run_at, id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, queue, kind, payload, priority, attempt, max_attempts, created_at, run_at
)
SELECT (SELECT count(*) FROM done) AS done, next.*
FROM (SELECT 1) AS one LEFT JOIN next ON true";

pub(super) const FAIL_SQL: &str = "
UPDATE queue.jobs SET
    state = CASE WHEN $5::bool OR attempt >= max_attempts
                 THEN 'discarded'::queue.job_state ELSE 'failed'::queue.job_state END,
    run_at = CASE WHEN $5::bool OR attempt >= max_attempts THEN run_at
                  ELSE now() + $6::int8 * interval '1 millisecond' END,
    finished_at = CASE WHEN $5::bool OR attempt >= max_attempts THEN now() END,
    last_error = $4,
    errors = errors || jsonb_build_array(
        jsonb_build_object('attempt', attempt, 'at', now(), 'error', $4::text)),
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND state = 'running'
RETURNING state::text";

// A job woken (`wake_in`) while it ran has a `run_at` after its claim (`attempted_at`): its
// snooze then ends at once rather than after the delay, so a wake-up is never lost.
pub(super) const SNOOZE_SQL: &str = "
UPDATE queue.jobs SET
    state = 'available',
    attempt = attempt - 1,
    run_at = CASE WHEN run_at > attempted_at THEN LEAST(run_at, now() + $4::int8 * interval '1 millisecond')
                  ELSE now() + $4::int8 * interval '1 millisecond' END,
    payload = COALESCE($5::jsonb, payload),
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND state = 'running'";

pub(super) const RELEASE_SQL: &str = "
UPDATE queue.jobs SET
    state = 'available', attempt = attempt - 1, run_at = now(),
    lease_owner = NULL, lease_expires_at = NULL
WHERE id = ANY($2) AND lease_owner = $1 AND state = 'running'
RETURNING queue";

// Rows are locked in id order (the subquery), as completions take them: a heartbeat over
// hundreds of held jobs and a completion batch must not lock overlapping rows in opposite
// orders (a deadlock, broken only after `deadlock_timeout`).
pub(super) const HEARTBEAT_SQL: &str = "
UPDATE queue.jobs SET lease_expires_at = now() + $2::int8 * interval '1 millisecond'
WHERE id IN (
    SELECT id FROM queue.jobs
    WHERE id = ANY($3) AND lease_owner = $1 AND state = 'running'
    ORDER BY id
    FOR UPDATE
) AND (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL
RETURNING id";

pub(super) const RESCUE_SQL: &str = "
UPDATE queue.jobs SET
    state = CASE WHEN attempt >= max_attempts
                 THEN 'discarded'::queue.job_state ELSE 'available'::queue.job_state END,
    finished_at = CASE WHEN attempt >= max_attempts THEN now() END,
    run_at = now(),
    last_error = 'lease expired: the worker was lost',
    errors = errors || jsonb_build_array(jsonb_build_object(
        'attempt', attempt, 'at', now(), 'error', 'lease expired: the worker was lost')),
    lease_owner = NULL,
    lease_expires_at = NULL
WHERE id IN (
    SELECT id FROM queue.jobs
    WHERE state = 'running' AND lease_expires_at < now()
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
RETURNING id, queue, state::text";

pub(super) const CANCEL_SQL: &str = "
WITH target AS (
    SELECT id, state FROM queue.jobs WHERE id = $1 FOR UPDATE
), updated AS (
    UPDATE queue.jobs j SET state = 'cancelled', finished_at = now(),
        lease_owner = NULL, lease_expires_at = NULL
    FROM target
    WHERE j.id = target.id AND target.state IN ('available', 'running', 'failed')
    RETURNING j.id, target.state AS previous
)
SELECT target.state::text AS previous,
       (SELECT count(pg_notify('queue_cancel', u.id::text))
        FROM updated u WHERE u.previous = 'running') AS notified
FROM target";

pub(super) const PURGE_SQL: &str = "
DELETE FROM queue.jobs WHERE id IN (
    SELECT id FROM queue.jobs
    WHERE (state = 'completed' AND finished_at < now() - $1::int8 * interval '1 millisecond')
       OR (state IN ('discarded', 'cancelled')
           AND finished_at < now() - $2::int8 * interval '1 millisecond')
    LIMIT $3
)";

pub(super) const GET_SQL: &str = "
SELECT id, queue, kind, payload, state::text AS state, attempt, max_attempts, lease_owner,
       last_error, errors, run_at, finished_at
FROM queue.jobs WHERE id = $1";

// `clock_timestamp()`: a job claimed while this statement waited for its row lock must see a
// `run_at` later than its claim.
pub(super) const WAKE_SQL: &str = "
WITH woken AS (
    UPDATE queue.jobs SET run_at = clock_timestamp()
    WHERE unique_key = $1 AND state IN ('available', 'running', 'failed')
    RETURNING queue, state
)
SELECT (SELECT count(*) FROM woken) AS woken,
       (SELECT count(pg_notify('queue_' || queue, '')) FROM woken WHERE state <> 'running') AS notified";
