/*
 * migrate.c: see migrate.h. Migrations are append-only: never edit one that
 * has shipped; add the next number instead.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"

struct migration {
    int version;
    const char *name;
    const char *sql;
};

static const struct migration migrations[] = {
    {1, "initial schema",
     "CREATE TABLE projects ("
     "  id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),"
     "  name text NOT NULL,"
     "  desired_state text NOT NULL DEFAULT 'stopped'"
     "    CHECK (desired_state IN ('running', 'stopped')),"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  updated_at timestamptz NOT NULL DEFAULT now());"

     "CREATE TABLE artifacts ("
     "  sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),"
     "  bytes bytea NOT NULL,"
     "  size bigint NOT NULL CHECK (size >= 0),"
     "  created_at timestamptz NOT NULL DEFAULT now());"

     "CREATE TABLE workflows ("
     "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
     "  project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
     "  kebab_name text NOT NULL,"
     "  is_active boolean NOT NULL DEFAULT true,"
     "  artifact_sha256 text REFERENCES artifacts(sha256),"
     "  definition jsonb,"
     "  version integer NOT NULL DEFAULT 1,"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  updated_at timestamptz NOT NULL DEFAULT now(),"
     "  UNIQUE (project_id, kebab_name));"

     "CREATE TABLE components ("
     "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
     "  project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
     "  name text NOT NULL,"
     "  kind text NOT NULL DEFAULT 'activity' CHECK (kind IN ('activity')),"
     "  is_active boolean NOT NULL DEFAULT true,"
     "  artifact_sha256 text REFERENCES artifacts(sha256),"
     "  version integer NOT NULL DEFAULT 1,"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  updated_at timestamptz NOT NULL DEFAULT now(),"
     "  UNIQUE (project_id, name));"

     "CREATE TABLE workflow_workers ("
     "  worker_id text PRIMARY KEY,"
     "  project_id text NOT NULL,"
     "  status text NOT NULL CHECK (status IN"
     "    ('starting', 'running', 'draining', 'stopped', 'crashed', 'failed')),"
     "  started_at timestamptz,"
     "  last_heartbeat timestamptz,"
     "  host text NOT NULL,"
     "  pid integer,"
     "  stopped_at timestamptz,"
     "  error text,"
     "  loaded jsonb,"
     "  restarts integer NOT NULL DEFAULT 0,"
     "  updated_at timestamptz NOT NULL DEFAULT now());"
     "CREATE INDEX workflow_workers_project_idx ON workflow_workers (project_id);"
     "CREATE INDEX workflow_workers_host_status_idx ON workflow_workers (host, status);"

     "CREATE TABLE executions ("
     "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
     "  project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
     "  workflow text NOT NULL,"
     "  input jsonb,"
     "  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running',"
     "    'sleeping', 'waiting', 'completed', 'failed', 'cancelled')),"
     "  output jsonb,"
     "  error jsonb,"
     "  run_at timestamptz NOT NULL DEFAULT now(),"
     "  lease_owner text,"
     "  lease_expires_at timestamptz,"
     "  attempt integer NOT NULL DEFAULT 0,"
     "  idempotency_key text,"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  updated_at timestamptz NOT NULL DEFAULT now(),"
     "  started_at timestamptz,"
     "  completed_at timestamptz);"
     "CREATE INDEX executions_claim_idx ON executions (project_id, run_at)"
     "  WHERE status IN ('pending', 'running', 'sleeping', 'waiting');"
     "CREATE INDEX executions_lease_idx ON executions (lease_owner)"
     "  WHERE lease_owner IS NOT NULL;"
     "CREATE INDEX executions_project_status_idx ON executions (project_id, status, created_at);"
     "CREATE UNIQUE INDEX executions_idempotency_idx ON executions (project_id, idempotency_key)"
     "  WHERE idempotency_key IS NOT NULL;"

     "CREATE TABLE steps ("
     "  execution_id uuid NOT NULL REFERENCES executions(id) ON DELETE CASCADE,"
     "  seq integer NOT NULL CHECK (seq >= 0),"
     "  project_id text NOT NULL,"
     "  name text NOT NULL,"
     "  kind text NOT NULL,"
     "  status text NOT NULL,"
     "  output jsonb,"
     "  error text,"
     "  attempts integer NOT NULL DEFAULT 0,"
     "  started_at timestamptz,"
     "  completed_at timestamptz,"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  PRIMARY KEY (execution_id, seq));"

     "CREATE TABLE signals ("
     "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
     "  execution_id uuid NOT NULL REFERENCES executions(id) ON DELETE CASCADE,"
     "  project_id text NOT NULL,"
     "  name text NOT NULL,"
     "  payload jsonb,"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  consumed_at timestamptz);"
     "CREATE INDEX signals_pending_idx ON signals (execution_id, name)"
     "  WHERE consumed_at IS NULL;"},
    {2, "worker heartbeat interval",
     /* Lets any instance tell a live row from one whose host vanished:
      * stale after 3 of that row's own heartbeat intervals. */
     "ALTER TABLE workflow_workers ADD COLUMN heartbeat_ms integer"
     "  CHECK (heartbeat_ms > 0);"},
    {3, "worker sandbox report",
     /* The sandbox layers the worker applied before loading any code
      * (worker/sandbox.c), so an operator sees with SQL what holds. */
     "ALTER TABLE workflow_workers ADD COLUMN sandbox jsonb;"},
    {4, "durable execution",
     /* code_sha256 pins a run to the artifact of its workflow when it
      * started (DESIGN §5); cancel_requested lets a cancel reach a run that
      * a worker holds; the list index serves keyset paging newest first. */
     "ALTER TABLE executions ADD COLUMN code_sha256 text"
     "  CHECK (code_sha256 ~ '^[0-9a-f]{64}$');"
     "ALTER TABLE executions ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;"
     "CREATE INDEX executions_project_list_idx ON executions (project_id, created_at, id);"
     "CREATE INDEX executions_lease_expiry_idx ON executions (lease_expires_at)"
     "  WHERE lease_owner IS NOT NULL;"},
    {5, "signals, cancel and retry",
     /* Each is one call, atomic under the run's row lock, so a signal, a
      * cancel, a retry and the run's own progress never interleave. A wait
      * for a signal keeps a step row with status 'waiting' (started_at is
      * when the wait began, for its timeout); it is not history until it
      * is 'completed' (payload) or 'timedout'. */
     "CREATE FUNCTION wf_signal_wait(p_run uuid, p_seq int, p_name text, p_timeout_ms bigint,"
     "  p_owner text) RETURNS text LANGUAGE plpgsql AS $f$"
     " DECLARE v_project text; v_started timestamptz; v_status text;"
     "  v_deadline timestamptz; v_sig uuid; v_payload jsonb;"
     " BEGIN"
     "  SELECT project_id INTO v_project FROM executions"
     "   WHERE id = p_run AND lease_owner = p_owner AND status = 'running'"
     "   AND NOT cancel_requested FOR UPDATE;"
     "  IF NOT FOUND THEN RETURN 'lost'; END IF;"
     "  SELECT started_at, status INTO v_started, v_status FROM steps"
     "   WHERE execution_id = p_run AND seq = p_seq;"
     "  IF NOT FOUND THEN"
     "   v_started := clock_timestamp();"
     "   INSERT INTO steps (execution_id, seq, project_id, name, kind, status, attempts,"
     "    started_at) VALUES (p_run, p_seq, v_project, p_name, 'signal', 'waiting', 1,"
     "    v_started);"
     "  ELSIF v_status <> 'waiting' THEN RETURN 'continue';"
     "  END IF;"
     "  SELECT id, payload INTO v_sig, v_payload FROM signals"
     "   WHERE execution_id = p_run AND name = p_name AND consumed_at IS NULL"
     "   ORDER BY created_at, id LIMIT 1 FOR UPDATE;"
     "  IF FOUND THEN"
     "   UPDATE signals SET consumed_at = clock_timestamp() WHERE id = v_sig;"
     "   UPDATE steps SET status = 'completed', output = coalesce(v_payload, 'null'::jsonb),"
     "    completed_at = clock_timestamp() WHERE execution_id = p_run AND seq = p_seq;"
     "   RETURN 'continue';"
     "  END IF;"
     "  IF p_timeout_ms >= 0 THEN"
     "   v_deadline := v_started + make_interval(secs => p_timeout_ms / 1000.0);"
     "   IF v_deadline <= clock_timestamp() THEN"
     "    UPDATE steps SET status = 'timedout', completed_at = clock_timestamp()"
     "     WHERE execution_id = p_run AND seq = p_seq;"
     "    RETURN 'continue';"
     "   END IF;"
     "  END IF;"
     "  UPDATE executions SET status = 'waiting', run_at = coalesce(v_deadline, 'infinity'),"
     "   lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()"
     "   WHERE id = p_run;"
     "  RETURN 'parked';"
     " END $f$;"

     /* 'unknown', 'ended:<status>', or 'delivered:<project>' */
     "CREATE FUNCTION wf_signal(p_run uuid, p_name text, p_payload jsonb)"
     "  RETURNS text LANGUAGE plpgsql AS $f$"
     " DECLARE v_project text; v_status text;"
     " BEGIN"
     "  SELECT project_id, status INTO v_project, v_status FROM executions"
     "   WHERE id = p_run FOR UPDATE;"
     "  IF NOT FOUND THEN RETURN 'unknown'; END IF;"
     "  IF v_status IN ('completed', 'failed', 'cancelled') THEN"
     "   RETURN 'ended:' || v_status; END IF;"
     "  INSERT INTO signals (execution_id, project_id, name, payload)"
     "   VALUES (p_run, v_project, p_name, p_payload);"
     "  UPDATE executions SET run_at = clock_timestamp(), updated_at = clock_timestamp()"
     "   WHERE id = p_run AND status = 'waiting';"
     "  PERFORM pg_notify('wf_runs', v_project);"
     "  RETURN 'delivered:' || v_project;"
     " END $f$;"

     /* 'unknown', 'ended:<status>', 'cancelled' (it was not held: done), or
      * 'requested:<host>' (its holder ends it) */
     "CREATE FUNCTION wf_cancel(p_run uuid) RETURNS text LANGUAGE plpgsql AS $f$"
     " DECLARE v_status text; v_owner text;"
     " BEGIN"
     "  SELECT status, lease_owner INTO v_status, v_owner FROM executions"
     "   WHERE id = p_run FOR UPDATE;"
     "  IF NOT FOUND THEN RETURN 'unknown'; END IF;"
     "  IF v_status IN ('completed', 'failed', 'cancelled') THEN"
     "   RETURN 'ended:' || v_status; END IF;"
     "  IF v_owner IS NULL THEN"
     "   UPDATE executions SET status = 'cancelled', cancel_requested = true,"
     "    error = '{\"message\": \"cancelled\"}', completed_at = clock_timestamp(),"
     "    updated_at = clock_timestamp() WHERE id = p_run;"
     "   RETURN 'cancelled';"
     "  END IF;"
     "  UPDATE executions SET cancel_requested = true, updated_at = clock_timestamp()"
     "   WHERE id = p_run;"
     "  RETURN 'requested:' || v_owner;"
     " END $f$;"

     /* A failed run resumes: the steps from its last failed one on are
      * forgotten (that step runs again), the rest replay.
      * 'unknown', 'not-failed:<status>' or 'retried:<project>' */
     "CREATE FUNCTION wf_retry(p_run uuid) RETURNS text LANGUAGE plpgsql AS $f$"
     " DECLARE v_status text; v_project text; v_seq int;"
     " BEGIN"
     "  SELECT status, project_id INTO v_status, v_project FROM executions"
     "   WHERE id = p_run FOR UPDATE;"
     "  IF NOT FOUND THEN RETURN 'unknown'; END IF;"
     "  IF v_status <> 'failed' THEN RETURN 'not-failed:' || v_status; END IF;"
     "  SELECT max(seq) INTO v_seq FROM steps WHERE execution_id = p_run AND status = 'failed';"
     "  IF v_seq IS NOT NULL THEN"
     "   DELETE FROM steps WHERE execution_id = p_run AND seq >= v_seq; END IF;"
     "  UPDATE executions SET status = 'pending', output = NULL, error = NULL,"
     "   completed_at = NULL, run_at = clock_timestamp(), cancel_requested = false,"
     "   lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp()"
     "   WHERE id = p_run;"
     "  PERFORM pg_notify('wf_runs', v_project);"
     "  RETURN 'retried:' || v_project;"
     " END $f$;"},
    {6, "run timeouts",
     /* A run given timeoutMs fails once deadline_at passes, wherever it
      * is; the index holds only runs with a deadline that have not ended. */
     "ALTER TABLE executions ADD COLUMN deadline_at timestamptz;"
     "CREATE INDEX executions_deadline_idx ON executions (deadline_at)"
     "  WHERE deadline_at IS NOT NULL"
     "  AND status IN ('pending', 'running', 'sleeping', 'waiting');"},
    {7, "lighter run writes",
     /* Each index a run's rows touch costs every run (bench/run, section
      * 8). The lease-expiry index served no query (claims find expired
      * leases through the claim index). The status list index holds only
      * runs not completed, so a run's end, the commonest write, adds no
      * entry to it; a list of completed runs walks the list index. Steps
      * lose their foreign key: every step row paid a per-row check that
      * locked its run, which the step INSERT already locks (FOR SHARE),
      * and a statement trigger keeps ON DELETE CASCADE for operators who
      * delete old runs with SQL. */
     "DROP INDEX executions_lease_expiry_idx;"
     "DROP INDEX executions_project_status_idx;"
     "CREATE INDEX executions_unfinished_idx ON executions (project_id, status, created_at, id)"
     "  WHERE status <> 'completed';"
     "ALTER TABLE steps DROP CONSTRAINT steps_execution_id_fkey;"
     "CREATE FUNCTION wf_steps_cascade() RETURNS trigger LANGUAGE plpgsql AS $f$"
     " BEGIN"
     "  DELETE FROM steps WHERE execution_id IN (SELECT id FROM wf_old);"
     "  RETURN NULL;"
     " END $f$;"
     "CREATE TRIGGER executions_steps_cascade AFTER DELETE ON executions"
     "  REFERENCING OLD TABLE AS wf_old FOR EACH STATEMENT EXECUTE FUNCTION wf_steps_cascade();"
     /* Runs' ends and parks, a batch at a time, each row found by a
      * primary-key probe. Left to itself the planner, with the statistics
      * of a table growing faster than autovacuum analyzes it, hash-joined
      * a scan of the whole table to every batch (bench/run, section 8,
      * with BENCH_AUTO_EXPLAIN_MS); the function's settings leave it
      * nested loops over index probes only, the one plan that is right at
      * every size. */
     "CREATE FUNCTION wf_end(p_id uuid[], p_status text[], p_output jsonb[], p_error jsonb[],"
     "  p_owner text[], p_wake float8[]) RETURNS TABLE (id uuid, secs float8)"
     "  LANGUAGE plpgsql SET enable_seqscan = off SET enable_bitmapscan = off"
     "  SET enable_hashjoin = off SET enable_mergejoin = off AS $f$"
     " BEGIN"
     "  RETURN QUERY UPDATE executions e SET status = u.status, output = u.output,"
     "   error = u.error,"
     "   run_at = CASE WHEN u.wake_ms IS NULL THEN e.run_at"
     "    ELSE to_timestamp(u.wake_ms / 1000.0) END,"
     "   completed_at = CASE WHEN u.status IN ('completed', 'failed', 'cancelled')"
     "    THEN clock_timestamp() END,"
     "   updated_at = clock_timestamp(), lease_owner = NULL, lease_expires_at = NULL"
     "  FROM unnest(p_id, p_status, p_output, p_error, p_owner, p_wake)"
     "   AS u(id, status, output, error, owner, wake_ms)"
     /* IS TRUE: the key is the only indexable condition */
     "  WHERE e.id = u.id AND (e.lease_owner = u.owner AND e.status = 'running') IS TRUE"
     "  RETURNING e.id, extract(epoch FROM clock_timestamp() - e.created_at)::float8;"
     " END $f$;"
     /* Runs lose the foreign key to their project for the same reason as
      * steps: a per-row check on every trigger, for a project the engine
      * has just seen (a trigger names a project that has a workflow, or a
      * worker here). A statement trigger keeps the cascade. */
     "ALTER TABLE executions DROP CONSTRAINT executions_project_id_fkey;"
     "CREATE FUNCTION wf_executions_cascade() RETURNS trigger LANGUAGE plpgsql AS $f$"
     " BEGIN"
     "  DELETE FROM executions WHERE project_id IN (SELECT id FROM wf_old);"
     "  RETURN NULL;"
     " END $f$;"
     "CREATE TRIGGER projects_executions_cascade AFTER DELETE ON projects"
     "  REFERENCING OLD TABLE AS wf_old FOR EACH STATEMENT"
     "  EXECUTE FUNCTION wf_executions_cascade();"},
    {8, "schedules",
     /* A schedule fires its workflow at each tick of its cron expression
      * (server/schedules.c). next_fire_at is the next tick to fire (NULL:
      * none left); the firing pass takes due rows FOR UPDATE SKIP LOCKED
      * and moves next_fire_at past the tick it fired in the same
      * transaction as the run's INSERT, whose idempotency key
      * schedule:<id>:<tick> makes a second run for one tick impossible
      * whatever happens. The partial index holds what the pass looks at. */
     "CREATE TABLE schedules ("
     "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
     "  project_id text NOT NULL REFERENCES projects(id) ON DELETE CASCADE,"
     "  workflow text NOT NULL,"
     "  cron text NOT NULL,"
     "  timezone text NOT NULL DEFAULT 'UTC',"
     "  input jsonb,"
     "  missed text NOT NULL DEFAULT 'fire-once' CHECK (missed IN ('fire-once', 'skip')),"
     "  paused boolean NOT NULL DEFAULT false,"
     "  next_fire_at timestamptz,"
     "  last_tick_at timestamptz,"
     "  last_fired_at timestamptz,"
     "  last_execution_id uuid,"
     "  last_error text,"
     "  fired bigint NOT NULL DEFAULT 0,"
     "  skipped bigint NOT NULL DEFAULT 0,"
     "  created_at timestamptz NOT NULL DEFAULT now(),"
     "  updated_at timestamptz NOT NULL DEFAULT now());"
     "CREATE INDEX schedules_project_idx ON schedules (project_id, created_at, id);"
     "CREATE INDEX schedules_due_idx ON schedules (next_fire_at)"
     "  WHERE NOT paused AND next_fire_at IS NOT NULL;"},
    {9, "live run events",
     /* Server-sent events (server/events.c, DESIGN §5.1). Every statement
      * that writes runs or steps announces the projects it touched with
      * NOTIFY wf_events, inside its own transaction, so a notification
      * means "committed" and PostgreSQL folds the repeats of one
      * transaction into one (one per project and commit batch). Statement
      * triggers, not row triggers: the run path writes many rows per
      * statement. retries counts wf_retry calls: a retry rewrites a run's
      * history from its failed step on, and a run stream's event id
      * carries it to notice. A project stream reads the rows changed since
      * its cursor through a BRIN index on updated_at: rows are written
      * roughly in updated_at order, so the recent ones sit in the last
      * page ranges, and a BRIN index costs a run's writes almost nothing
      * (a btree on (project_id, updated_at, id) was measured at about a
      * tenth of PostgreSQL's time per run: every run write is a non-HOT
      * update that inserts into each btree). wf_project_events reads up to
      * the start of the oldest transaction still open, so that a row
      * committed late with an older updated_at is never skipped. */
     "ALTER TABLE executions ADD COLUMN retries integer NOT NULL DEFAULT 0;"
     "CREATE INDEX executions_updated_brin_idx ON executions USING brin (updated_at);"
     "CREATE FUNCTION wf_events_notify() RETURNS trigger LANGUAGE plpgsql AS $f$"
     " BEGIN"
     "  PERFORM pg_notify('wf_events', p) FROM (SELECT DISTINCT project_id AS p FROM wf_new) s;"
     "  RETURN NULL;"
     " END $f$;"
     "CREATE TRIGGER executions_events_ins AFTER INSERT ON executions"
     "  REFERENCING NEW TABLE AS wf_new FOR EACH STATEMENT EXECUTE FUNCTION wf_events_notify();"
     "CREATE TRIGGER executions_events_upd AFTER UPDATE ON executions"
     "  REFERENCING NEW TABLE AS wf_new FOR EACH STATEMENT EXECUTE FUNCTION wf_events_notify();"
     "CREATE TRIGGER steps_events_ins AFTER INSERT ON steps"
     "  REFERENCING NEW TABLE AS wf_new FOR EACH STATEMENT EXECUTE FUNCTION wf_events_notify();"
     "CREATE TRIGGER steps_events_upd AFTER UPDATE ON steps"
     "  REFERENCING NEW TABLE AS wf_new FOR EACH STATEMENT EXECUTE FUNCTION wf_events_notify();"
     "CREATE OR REPLACE FUNCTION wf_retry(p_run uuid) RETURNS text LANGUAGE plpgsql AS $f$"
     " DECLARE v_status text; v_project text; v_seq int;"
     " BEGIN"
     "  SELECT status, project_id INTO v_status, v_project FROM executions"
     "   WHERE id = p_run FOR UPDATE;"
     "  IF NOT FOUND THEN RETURN 'unknown'; END IF;"
     "  IF v_status <> 'failed' THEN RETURN 'not-failed:' || v_status; END IF;"
     "  SELECT max(seq) INTO v_seq FROM steps WHERE execution_id = p_run AND status = 'failed';"
     "  IF v_seq IS NOT NULL THEN"
     "   DELETE FROM steps WHERE execution_id = p_run AND seq >= v_seq; END IF;"
     "  UPDATE executions SET status = 'pending', output = NULL, error = NULL,"
     "   completed_at = NULL, run_at = clock_timestamp(), cancel_requested = false,"
     "   lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp(),"
     "   retries = retries + 1"
     "   WHERE id = p_run;"
     "  PERFORM pg_notify('wf_runs', v_project);"
     "  RETURN 'retried:' || v_project;"
     " END $f$;"
     /* A project stream's next rows after (p_after_us, p_after_id), in
      * (updated_at, id) order, as (key_us, id, event JSON). The horizon h
      * is read first, in a statement of its own, so the rows' snapshot is
      * taken after it: every transaction of this database still open then
      * began at or after h or is counted in it, and every writer sets
      * updated_at to its clock_timestamp() or now(), never before its own
      * start, so no row with updated_at < h can commit later. Rows at or
      * past h wait for a later call; a last row with a NULL id says some
      * do. Only client sessions count (autovacuum writes no row), and
      * transactions open longer than 5 s are not waited for (ours last
      * milliseconds; an operator's session left open must not stall every
      * stream). p_after_us NULL: the starting point is h, returned first
      * with a NULL id (then only the marker can follow). */
     "CREATE FUNCTION wf_project_events(p_project text, p_after_us bigint, p_after_id uuid,"
     "  p_limit int) RETURNS TABLE (key_us bigint, id uuid, ev text)"
     /* the BRIN range scan, never a walk of the project's whole list */
     "  LANGUAGE plpgsql VOLATILE SET enable_seqscan = off SET enable_indexscan = off AS $f$"
     " DECLARE t0 timestamptz := clock_timestamp(); h timestamptz; v_after timestamptz;"
     " BEGIN"
     "  PERFORM pg_stat_clear_snapshot();"
     "  SELECT min(a.xact_start) INTO h FROM pg_stat_activity a"
     "   WHERE a.pid <> pg_backend_pid() AND a.datname = current_database()"
     "   AND a.backend_type = 'client backend'"
     "   AND a.xact_start IS NOT NULL AND a.xact_start > t0 - interval '5 seconds';"
     "  h := least(coalesce(h, t0), t0);"
     "  IF p_after_us IS NULL THEN"
     "   RETURN QUERY SELECT (extract(epoch FROM date_trunc('second', h))::bigint * 1000000"
     "    + extract(microseconds FROM h)::bigint % 1000000), NULL::uuid, NULL::text;"
     "   v_after := h;"
     "  ELSE"
     "   v_after := to_timestamp(p_after_us / 1000000) + (p_after_us % 1000000)"
     "    * interval '1 microsecond';"
     "  END IF;"
     "  RETURN QUERY SELECT extract(epoch FROM date_trunc('second', e.updated_at))::bigint"
     "    * 1000000 + extract(microseconds FROM e.updated_at)::bigint % 1000000, e.id,"
     "   jsonb_build_object('executionId', e.id, 'projectId', e.project_id,"
     "    'workflow', e.workflow, 'status', e.status, 'retries', e.retries,"
     "    'createdAt', to_char(e.created_at AT TIME ZONE 'UTC',"
     "     'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
     "    'updatedAt', to_char(e.updated_at AT TIME ZONE 'UTC',"
     "     'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
     "    'completedAt', to_char(e.completed_at AT TIME ZONE 'UTC',"
     "     'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))::text"
     "   FROM executions e WHERE e.project_id = p_project AND e.updated_at >= v_after"
     "   AND (e.updated_at, e.id) > (v_after, coalesce(p_after_id,"
     "    '00000000-0000-0000-0000-000000000000'::uuid))"
     "   AND e.updated_at < h ORDER BY e.updated_at, e.id LIMIT p_limit;"
     "  IF EXISTS (SELECT 1 FROM executions e WHERE e.project_id = p_project"
     "   AND e.updated_at >= h AND (e.updated_at, e.id) > (v_after, coalesce(p_after_id,"
     "    '00000000-0000-0000-0000-000000000000'::uuid))) THEN"
     "   RETURN QUERY SELECT NULL::bigint, NULL::uuid, NULL::text;"
     "  END IF;"
     " END $f$;"},
    {10, "child runs",
     /* A run may start child runs and wait for them (the host API's
      * children call; the declarative fork, and for with a concurrency
      * bound): one step of kind 'children' at the parent's seq, waiting
      * while they run, whose output is then their results. Each child is
      * an ordinary run (its own steps, leases, crash recovery) pinned to
      * its parent's code when it runs the parent's workflow, with
      * parent_id/parent_seq/parent_index saying whose it is and branch
      * what part of a definition it runs. Children past the concurrency
      * bound are held: waiting, run_at infinity, held true, until a slot
      * frees.
      *
      * Locks. A child's end takes no lock beyond its own row: a row
      * trigger only queues (parent, seq) in joins_due and notifies
      * wf_joins. Core then runs wf_settle_joins, which takes each parent's
      * row, then its join step, in parent id order (so do
      * wf_children_wait, row then step), completes the join when it is
      * done (all children ended, or a child failed; any: the first that
      * completed) and wakes the parent; it starts held children with SKIP
      * LOCKED. Children that are no longer waited for (their parent ended,
      * or its join completed) are cancelled by core's periodic sweep, also
      * SKIP LOCKED. So no statement of the run path ever waits for a lock
      * a settle holds, and settles never wait for each other in a cycle.
      * A parent retried after a failed join runs its failed and cancelled
      * children again, from their own checkpoints. */
     "ALTER TABLE executions ADD COLUMN parent_id uuid;"
     " ALTER TABLE executions ADD COLUMN parent_seq integer;"
     " ALTER TABLE executions ADD COLUMN parent_index integer;"
     " ALTER TABLE executions ADD COLUMN branch jsonb;"
     " ALTER TABLE executions ADD COLUMN held boolean NOT NULL DEFAULT false;"
     " CREATE INDEX executions_parent_idx ON executions (parent_id, parent_seq, parent_index)"
     "  WHERE parent_id IS NOT NULL;"
     " CREATE INDEX executions_live_children_idx ON executions (parent_id)"
     "  WHERE parent_id IS NOT NULL AND status IN ('pending', 'running', 'sleeping', 'waiting');"
     " CREATE TABLE joins_due (parent_id uuid NOT NULL, seq integer NOT NULL);"
     " CREATE FUNCTION wf_child_ended() RETURNS trigger LANGUAGE plpgsql AS $f$"
     " BEGIN"
     "  INSERT INTO joins_due (parent_id, seq) VALUES (NEW.parent_id, NEW.parent_seq);"
     "  PERFORM pg_notify('wf_joins', '');"
     "  RETURN NULL;"
     " END $f$;"
     " CREATE TRIGGER executions_child_ended AFTER UPDATE OF status ON executions FOR EACH ROW"
     "  WHEN (NEW.parent_id IS NOT NULL AND NEW.status IN ('completed', 'failed', 'cancelled')"
     "   AND OLD.status NOT IN ('completed', 'failed', 'cancelled'))"
     "  EXECUTE FUNCTION wf_child_ended();"
     " CREATE FUNCTION wf_join_settle(p_run uuid, p_seq int) RETURNS boolean LANGUAGE plpgsql AS "
     "$f$"
     " DECLARE v_project text; v_status text; v_spec jsonb; v_live int; v_ok int; v_bad int;"
     "  v_held int; v_res jsonb; v_err text; v_limit int;"
     " BEGIN"
     "  SELECT project_id INTO v_project FROM executions WHERE id = p_run FOR UPDATE;"
     "  IF NOT FOUND THEN RETURN false; END IF;"
     "  SELECT status, output INTO v_status, v_spec FROM steps"
     "   WHERE execution_id = p_run AND seq = p_seq AND kind = 'children' FOR UPDATE;"
     "  IF NOT FOUND OR v_status <> 'waiting' THEN RETURN false; END IF;"
     "  SELECT count(*) FILTER (WHERE status IN ('pending', 'running', 'sleeping', 'waiting')),"
     "   count(*) FILTER (WHERE status = 'completed'),"
     "   count(*) FILTER (WHERE status IN ('failed', 'cancelled')),"
     "   count(*) FILTER (WHERE held)"
     "   INTO v_live, v_ok, v_bad, v_held"
     "   FROM executions WHERE parent_id = p_run AND parent_seq = p_seq;"
     "  IF v_spec->>'mode' = 'any' AND v_ok > 0 THEN"
     "   SELECT jsonb_build_array(jsonb_build_object('executionId', id, 'index', parent_index,"
     "     'status', status, 'output', output)) INTO v_res"
     "    FROM executions WHERE parent_id = p_run AND parent_seq = p_seq AND status = 'completed'"
     "    ORDER BY completed_at, parent_index LIMIT 1;"
     "  ELSIF v_live = 0 OR (v_spec->>'mode' = 'all' AND v_bad > 0) THEN"
     "   SELECT coalesce(jsonb_agg(jsonb_build_object('executionId', id, 'index', parent_index,"
     "     'status', status, 'output', output, 'error', error) ORDER BY parent_index), '[]')"
     "    INTO v_res FROM executions WHERE parent_id = p_run AND parent_seq = p_seq;"
     "   IF v_bad > 0 THEN"
     "    SELECT 'child run ' || id || ' (' || parent_index || ') ' || status"
     "      || coalesce(': ' || (error->>'message'), '') INTO v_err"
     "     FROM executions WHERE parent_id = p_run AND parent_seq = p_seq"
     "     AND status IN ('failed', 'cancelled') ORDER BY parent_index LIMIT 1;"
     "   END IF;"
     "  ELSE"
     "   v_limit := coalesce((v_spec->>'limit')::int, 0);"
     "   IF v_held > 0 AND v_limit > 0 AND v_live - v_held < v_limit THEN"
     "    UPDATE executions SET status = 'pending', held = false, run_at = clock_timestamp(),"
     "     updated_at = clock_timestamp()"
     "     WHERE id IN (SELECT id FROM executions WHERE parent_id = p_run AND parent_seq = p_seq"
     "      AND held ORDER BY parent_index LIMIT v_limit - (v_live - v_held) FOR UPDATE SKIP "
     "LOCKED);"
     "    PERFORM pg_notify('wf_runs', v_project);"
     "   END IF;"
     "   RETURN false;"
     "  END IF;"
     "  UPDATE steps SET status = CASE WHEN v_err IS NULL THEN 'completed' ELSE 'failed' END,"
     "   output = v_res, error = v_err, completed_at = clock_timestamp()"
     "   WHERE execution_id = p_run AND seq = p_seq;"
     "  UPDATE executions SET run_at = clock_timestamp(), updated_at = clock_timestamp()"
     "   WHERE id = p_run AND status = 'waiting';"
     "  PERFORM pg_notify('wf_runs', v_project);"
     "  RETURN true;"
     " END $f$;"
     " CREATE FUNCTION wf_settle_joins(p_limit int) RETURNS int LANGUAGE plpgsql AS $f$"
     " DECLARE j record; n int := 0;"
     " BEGIN"
     "  FOR j IN WITH d AS (DELETE FROM joins_due WHERE ctid IN (SELECT ctid FROM joins_due"
     "     LIMIT p_limit FOR UPDATE SKIP LOCKED) RETURNING parent_id, seq)"
     "    SELECT DISTINCT parent_id, seq FROM d ORDER BY 1, 2 LOOP"
     "   PERFORM wf_join_settle(j.parent_id, j.seq);"
     "   n := n + 1;"
     "  END LOOP;"
     "  RETURN n;"
     " END $f$;"
     " CREATE FUNCTION wf_children_wait(p_run uuid, p_seq int, p_owner text, p_specs jsonb,"
     "  p_mode text, p_limit int) RETURNS text LANGUAGE plpgsql AS $f$"
     " DECLARE v_project text; v_workflow text; v_sha text; v_status text; v_n int;"
     " BEGIN"
     "  SELECT project_id, workflow, code_sha256 INTO v_project, v_workflow, v_sha FROM executions"
     "   WHERE id = p_run AND lease_owner = p_owner AND status = 'running'"
     "   AND NOT cancel_requested FOR UPDATE;"
     "  IF NOT FOUND THEN RETURN 'lost'; END IF;"
     "  SELECT status INTO v_status FROM steps WHERE execution_id = p_run AND seq = p_seq;"
     "  IF FOUND AND v_status <> 'waiting' THEN RETURN 'continue'; END IF;"
     "  IF NOT FOUND THEN"
     "   v_n := jsonb_array_length(p_specs);"
     "   INSERT INTO steps (execution_id, seq, project_id, name, kind, status, output, attempts,"
     "    started_at) VALUES (p_run, p_seq, v_project, p_mode || ':' || v_n, 'children', 'waiting',"
     "    jsonb_build_object('mode', p_mode, 'limit', p_limit, 'n', v_n), 1, clock_timestamp());"
     "   IF EXISTS (SELECT 1 FROM executions WHERE parent_id = p_run AND parent_seq = p_seq) THEN"
     "    PERFORM wf_retry(id) FROM executions"
     "     WHERE parent_id = p_run AND parent_seq = p_seq AND status = 'failed';"
     "    UPDATE executions SET status = 'pending', output = NULL, error = NULL,"
     "     completed_at = NULL, run_at = clock_timestamp(), cancel_requested = false,"
     "     lease_owner = NULL, lease_expires_at = NULL, updated_at = clock_timestamp(),"
     "     retries = retries + 1"
     "     WHERE parent_id = p_run AND parent_seq = p_seq AND status = 'cancelled';"
     /* a cancel the orphan sweep asked for before the retry, not done yet */
     "    UPDATE executions SET cancel_requested = false, updated_at = clock_timestamp()"
     "     WHERE parent_id = p_run AND parent_seq = p_seq AND cancel_requested"
     "     AND status IN ('pending', 'running', 'sleeping', 'waiting');"
     "    IF p_limit > 0 THEN"
     "     UPDATE executions SET status = 'waiting', held = true, run_at = 'infinity'"
     "      WHERE id IN (SELECT id FROM executions WHERE parent_id = p_run AND parent_seq = p_seq"
     "       AND status = 'pending' ORDER BY parent_index OFFSET greatest(p_limit - (SELECT"
     "       count(*) FROM executions WHERE parent_id = p_run AND parent_seq = p_seq"
     "       AND status IN ('running', 'sleeping', 'waiting') AND NOT held), 0));"
     "    END IF;"
     "   ELSE"
     "    INSERT INTO executions (project_id, workflow, input, code_sha256, parent_id, parent_seq,"
     "      parent_index, branch, status, held, run_at, idempotency_key, error, completed_at)"
     "     SELECT v_project, s.value->>'workflow', s.value->'input', x.sha, p_run, p_seq,"
     "      s.ord - 1, s.value->'branch',"
     "      CASE WHEN x.sha IS NULL THEN 'failed' WHEN p_limit > 0 AND s.ord > p_limit"
     "       THEN 'waiting' ELSE 'pending' END,"
     "      x.sha IS NOT NULL AND p_limit > 0 AND s.ord > p_limit,"
     "      CASE WHEN x.sha IS NOT NULL AND p_limit > 0 AND s.ord > p_limit THEN 'infinity'"
     "       ELSE clock_timestamp() END,"
     "      'child:' || p_run || ':' || p_seq || ':' || (s.ord - 1),"
     "      CASE WHEN x.sha IS NULL THEN jsonb_build_object('message',"
     "       'unknown workflow \"' || (s.value->>'workflow') || '\"') END,"
     "      CASE WHEN x.sha IS NULL THEN clock_timestamp() END"
     "     FROM jsonb_array_elements(p_specs) WITH ORDINALITY AS s(value, ord)"
     "     CROSS JOIN LATERAL (SELECT CASE WHEN s.value->>'workflow' = v_workflow THEN v_sha"
     "      ELSE (SELECT w.artifact_sha256 FROM workflows w WHERE w.project_id = v_project"
     "       AND w.kebab_name = s.value->>'workflow' AND w.is_active) END AS sha) x;"
     "   END IF;"
     "   PERFORM pg_notify('wf_runs', v_project);"
     "  END IF;"
     "  IF wf_join_settle(p_run, p_seq) THEN RETURN 'continue'; END IF;"
     "  UPDATE executions SET status = 'waiting', run_at = 'infinity', lease_owner = NULL,"
     "   lease_expires_at = NULL, updated_at = clock_timestamp() WHERE id = p_run;"
     "  RETURN 'parked';"
     " END $f$;"},
};

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* Rolls back, logs why, returns -1. */
static int fail(struct db_conn *c, const char *what)
{
    log_error("could not %s: %s", what, db_error(c));
    if (db_command(c, "ROLLBACK", 0, NULL) < 0)
        log_debug("rollback failed: %s", db_error(c));
    return -1;
}

int migrate_apply(struct db_conn *c)
{
    PGresult *r;
    int current = 0;
    int applied = 0;

    if (db_command(c, "BEGIN", 0, NULL) < 0) {
        log_error("could not start migration transaction: %s", db_error(c));
        return -1;
    }
    /* Serializes concurrent starters; released at COMMIT or ROLLBACK. */
    if (db_command(c, "SELECT pg_advisory_xact_lock(hashtext('wf-server schema migrations'))", 0,
                   NULL) < 0)
        return fail(c, "take the migration lock");
    if (db_command(c,
                   "CREATE TABLE IF NOT EXISTS wf_schema_migrations ("
                   "  version integer PRIMARY KEY,"
                   "  name text NOT NULL,"
                   "  applied_at timestamptz NOT NULL DEFAULT now())",
                   0, NULL) < 0)
        return fail(c, "create the migration table");
    r = db_exec(c, "SELECT coalesce(max(version), 0) FROM wf_schema_migrations", 0, NULL);
    if (r == NULL)
        return fail(c, "read the schema version");
    current = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (current > migrations[NMIGRATIONS - 1].version) {
        log_error("database schema version %d is newer than this server's %d; refusing to run",
                  current, migrations[NMIGRATIONS - 1].version);
        if (db_command(c, "ROLLBACK", 0, NULL) < 0)
            log_debug("rollback failed: %s", db_error(c));
        return -1;
    }
    for (int i = 0; i < NMIGRATIONS; i++) {
        const struct migration *mg = &migrations[i];
        char version[16];
        const char *params[2];

        if (mg->version <= current)
            continue;
        /* Multi-statement text runs through the simple protocol. */
        if (db_command(c, mg->sql, 0, NULL) < 0) {
            char what[128];
            snprintf(what, sizeof(what), "apply migration %d (%s)", mg->version, mg->name);
            return fail(c, what);
        }
        snprintf(version, sizeof(version), "%d", mg->version);
        params[0] = version;
        params[1] = mg->name;
        if (db_command(c, "INSERT INTO wf_schema_migrations (version, name) VALUES ($1, $2)", 2,
                       params) < 0)
            return fail(c, "record the migration");
        log_info("applied migration %d: %s", mg->version, mg->name);
        applied++;
    }
    if (db_command(c, "COMMIT", 0, NULL) < 0) {
        log_error("could not commit migrations: %s", db_error(c));
        return -1;
    }
    return applied;
}
