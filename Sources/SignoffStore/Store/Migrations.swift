import Foundation

/// Forward-only, numbered schema migrations. Never edit a released migration: add a new one.
///
/// Times are integer milliseconds since 1970 (UTC) on both backends (`*_at` columns); the views
/// show them as timestamps. JSON payloads are stored as text so `psql` users can read them.
enum Migrations {
    struct Migration: Sendable {
        var version: Int
        var name: String
        var sql: @Sendable (SQLDialect) -> [String]
    }

    /// The newest schema version this binary knows.
    static var latestVersion: Int { all.last!.version }

    static let all: [Migration] = [
        Migration(version: 1, name: "runs, checkpoints, requests, tokens, votes, events, outbox, inbound, views", sql: v1),
        Migration(version: 2, name: "fewer index entries per write: due, reminder and unique-key indexes skip rows without a value; room for in-page updates", sql: v2),
        Migration(version: 3, name: "fewer index and key-check writes on the pause/resume path: one checkpoint id index, events keyed by (run_id, seq), no hot-path foreign keys, small checkpoints stored as is", sql: v3),
        Migration(version: 4, name: "outbox status withdrawn: reminders nobody needs any more are no longer recorded as failed deliveries", sql: v4),
    ]

    /// The outbox gets a fourth status, `withdrawn`: a scheduled reminder the sender did not send
    /// because it was no longer needed (its request was decided, expired or cancelled, its token used
    /// or revoked, or a later reminder to the same reviewer superseded it). Until now such a row was
    /// stored as `failed` with `last_error = 'withdrawn: <why>'`, so `WHERE status = 'failed'` mixed
    /// undelivered mail with mail that was never meant to go out.
    /// - Existing rows: `failed` with a `last_error` beginning with exactly `withdrawn: ` (compared with
    ///   `substr`, not `LIKE`, which is case-insensitive on SQLite) become `withdrawn`, and `last_error`
    ///   keeps the reason without the prefix, as `markWithdrawn` writes it. Every other failed row (5xx,
    ///   gave up, bounced) stays `failed`. `attempts`, `next_attempt_at` and every other column are kept.
    /// - PostgreSQL: the column's CHECK constraint (`outbox_status_check`, the name PostgreSQL gave the
    ///   inline check of v1) is dropped, the rows are moved, and the constraint is added back with the
    ///   new value; adding it checks every row once, under the migration's lock.
    /// - SQLite cannot change a CHECK in place: the table is rebuilt (same columns, types and order,
    ///   `message_id` still UNIQUE, `id` still `INTEGER PRIMARY KEY AUTOINCREMENT`) and its rows are
    ///   copied with their ids. The AUTOINCREMENT high-water mark in `sqlite_sequence` is carried over
    ///   from the old table (it can be above the largest id left), so an id is never handed out twice;
    ///   `RENAME` moves that row, and the UNIQUE index, to the name `outbox`. Nothing references the
    ///   outbox (no foreign key, no view), so the drop touches nothing else. The partial index
    ///   `outbox_due_idx` (pending rows by next attempt, which `dueMail` walks) is created again as
    ///   v1 made it; `withdrawn` rows, like sent and failed ones, are not in it.
    private static func v4(_ d: SQLDialect) -> [String] {
        let moveWithdrawn = """
            UPDATE outbox SET status = 'withdrawn', last_error = substr(last_error, 12)
            WHERE status = 'failed' AND substr(last_error, 1, 11) = 'withdrawn: '
            """
        let check = "CHECK (status IN ('pending','sent','failed','withdrawn'))"
        switch d {
        case .postgres:
            return [
                "ALTER TABLE outbox DROP CONSTRAINT IF EXISTS outbox_status_check",
                moveWithdrawn,
                "ALTER TABLE outbox ADD CONSTRAINT outbox_status_check \(check)",
                "COMMENT ON COLUMN outbox.status IS 'pending (to send, next at next_attempt_at), sent, failed (undeliverable: last_error says why), withdrawn (a reminder no longer needed, never sent: last_error says why).'",
            ]
        case .sqlite:
            return [
                """
                CREATE TABLE outbox_v4 (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    message_id text NOT NULL UNIQUE,
                    kind text NOT NULL,
                    recipient text NOT NULL,
                    sender text,
                    raw BLOB NOT NULL,
                    request_id text,
                    run_id text,
                    status text NOT NULL \(check),
                    attempts integer NOT NULL DEFAULT 0,
                    next_attempt_at bigint NOT NULL,
                    last_error text,
                    sent_at bigint,
                    created_at bigint NOT NULL
                )
                """,
                """
                INSERT INTO outbox_v4 (id, message_id, kind, recipient, sender, raw, request_id, run_id, status, attempts, next_attempt_at, last_error, sent_at, created_at)
                SELECT id, message_id, kind, recipient, sender, raw, request_id, run_id, status, attempts, next_attempt_at, last_error, sent_at, created_at FROM outbox
                """,
                "DELETE FROM sqlite_sequence WHERE name = 'outbox_v4'",
                "INSERT INTO sqlite_sequence (name, seq) SELECT 'outbox_v4', seq FROM sqlite_sequence WHERE name = 'outbox'",
                "DROP TABLE outbox",
                "ALTER TABLE outbox_v4 RENAME TO outbox",
                "CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending'",
                moveWithdrawn,
            ]
        }
    }

    /// Cuts what each pause, answer and resume writes besides the rows themselves, without changing
    /// what any query finds (every query on these tables was checked: by `run_id` (+ `seq`), by `id`,
    /// by `(run_id, id)`; nothing reads events by their serial `id` or orders by it).
    /// - checkpoints: `UNIQUE (run_id, id)` and the index on `id` become one unique index on
    ///   `(id, run_id)`: it serves the lookups by id, by (run_id, id), and keeps the pair unique.
    ///   Three indexes per checkpoint row become two (the primary key `(run_id, seq)` stays).
    /// - events (PostgreSQL): the key is the unique `(run_id, seq)`, the index every append already
    ///   writes and every reader uses; the primary key index on the serial `id` goes (the column and its
    ///   sequence stay, so event ids keep growing). SQLite: `id` stays the rowid (free), but
    ///   without AUTOINCREMENT, which rewrote `sqlite_sequence` on every append (events are never
    ///   deleted, so ids still only grow).
    /// - foreign keys from checkpoints, requests, request_tokens and votes to their parents: each
    ///   was a key lookup (PostgreSQL: `SELECT … FOR KEY SHARE`) per inserted row. The store writes
    ///   these rows only in the transaction that holds the parent: a checkpoint or request under the
    ///   run's lease fence (run row locked), a token with its request, a vote after reading its
    ///   request `FOR UPDATE`. Nothing deletes runs or requests (runs end in a terminal status and
    ///   stay for the audit trail), so the `ON DELETE CASCADE` rules had no user; a future purge
    ///   must delete a run's checkpoints, requests, tokens, votes and events itself. SQLite keeps
    ///   its request/token/vote keys (dropping one means rebuilding the table, and a lookup in
    ///   cached pages costs little); the checkpoints table is rebuilt anyway, without its key.
    /// - runs (PostgreSQL): the claim index covers `runnable`, a stored column computed from
    ///   `status` (queued or running), instead of naming `status` in its predicate. An update that
    ///   changes a column an index names (even in its predicate) writes a new entry in every index of
    ///   the table; now a claim (queued → running, the most frequent status change) changes no
    ///   indexed value and stays in its page (HOT, with the free space of v2's fillfactor): no index
    ///   entry at all, and fewer dead entries for the next claim's index walk to skip. The fence
    ///   (`status = 'running'`) no longer matches a partial index either, so the planner always
    ///   looks a leased run up by its primary key.
    /// - runs (SQLite): the claim index splits in two, queued runs by age and running runs by lease
    ///   expiry: a claim reads the oldest queued runs and the expired leases directly instead of
    ///   walking past every run other runners hold (a busy runner holds hundreds). SQLite rewrites
    ///   only the indexes whose columns (or predicate columns) change, and a status change moved
    ///   an entry of the old index too, so this costs no more per update.
    /// - PostgreSQL: checkpoint rows up to a page (8 KiB) are stored as they are
    ///   (`toast_tuple_target`), no longer compressed by pglz from 2 KiB on: a small checkpoint is
    ///   written once and read back at every resume, so compressing it costs CPU on both paths.
    ///   Bigger checkpoints are still compressed and moved out of line.
    private static func v3(_ d: SQLDialect) -> [String] {
        switch d {
        case .postgres:
            return [
                "ALTER TABLE runs ADD COLUMN runnable boolean GENERATED ALWAYS AS (status IN ('queued','running')) STORED",
                "DROP INDEX IF EXISTS runs_runnable_idx",
                "CREATE INDEX runs_runnable_idx ON runs (created_at) WHERE runnable",
                "COMMENT ON COLUMN runs.runnable IS 'status is queued or running (computed): what the claim index covers.'",
                "ALTER TABLE checkpoints DROP CONSTRAINT IF EXISTS checkpoints_run_id_id_key",
                "DROP INDEX IF EXISTS checkpoints_id_idx",
                "CREATE UNIQUE INDEX checkpoints_id_run_idx ON checkpoints (id, run_id)",
                "ALTER TABLE checkpoints DROP CONSTRAINT IF EXISTS checkpoints_run_id_fkey",
                "ALTER TABLE checkpoints SET (toast_tuple_target = 8160)",
                "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_pkey",
                "ALTER TABLE requests DROP CONSTRAINT IF EXISTS requests_run_id_fkey",
                "ALTER TABLE request_tokens DROP CONSTRAINT IF EXISTS request_tokens_request_id_fkey",
                "ALTER TABLE votes DROP CONSTRAINT IF EXISTS votes_request_id_fkey",
                "COMMENT ON TABLE checkpoints IS 'The engine''s encoded checkpoint after each superstep, per run (seq 1, 2, …); id is unique per run.'",
            ]
        case .sqlite:
            return [
                """
                CREATE TABLE checkpoints_v3 (
                    run_id text NOT NULL,
                    seq integer NOT NULL,
                    id text NOT NULL,
                    superstep integer NOT NULL,
                    parent_id text,
                    data BLOB NOT NULL,
                    created_at bigint NOT NULL,
                    PRIMARY KEY (run_id, seq)
                )
                """,
                "INSERT INTO checkpoints_v3 (run_id, seq, id, superstep, parent_id, data, created_at) SELECT run_id, seq, id, superstep, parent_id, data, created_at FROM checkpoints",
                "DROP TABLE checkpoints",
                "ALTER TABLE checkpoints_v3 RENAME TO checkpoints",
                "CREATE UNIQUE INDEX checkpoints_id_run_idx ON checkpoints (id, run_id)",
                """
                CREATE TABLE events_v3 (
                    id INTEGER PRIMARY KEY,
                    run_id text NOT NULL,
                    seq integer NOT NULL,
                    kind text NOT NULL,
                    actor text,
                    data text NOT NULL,
                    at bigint NOT NULL,
                    prev_hash text NOT NULL,
                    hash text NOT NULL,
                    UNIQUE (run_id, seq)
                )
                """,
                "INSERT INTO events_v3 (id, run_id, seq, kind, actor, data, at, prev_hash, hash) SELECT id, run_id, seq, kind, actor, data, at, prev_hash, hash FROM events",
                "DROP TABLE events",
                "ALTER TABLE events_v3 RENAME TO events",
                "DROP INDEX IF EXISTS runs_runnable_idx",
                "CREATE INDEX runs_queued_idx ON runs (created_at) WHERE status = 'queued'",
                "CREATE INDEX runs_leased_idx ON runs (lease_expires_at) WHERE status = 'running'",
            ]
        }
    }

    /// Cuts index writes without changing what any query finds.
    /// - `dueRequests` looks up pending requests by `due_at <= now` or `remind_at <= now`; a request
    ///   without those times never matches, so it no longer costs an entry in these indexes.
    /// - PostgreSQL: a run row is rewritten at every status change, and each such (non-HOT) update
    ///   adds an entry to every index of the table, including a NULL `unique_key` entry nobody can
    ///   look up; the uniqueness of non-NULL keys is kept by a partial unique index (`ON CONFLICT DO
    ///   NOTHING` in `enqueue` names no target, so it uses it). SQLite only touches the indexes of
    ///   changed columns, so it keeps its constraint.
    /// - PostgreSQL: free space in each page of `runs` and `requests` (fillfactor) lets updates of
    ///   unindexed columns (checkpoint counter, heartbeats, delivered_at) stay in the page (HOT) and
    ///   write no index entry at all.
    private static func v2(_ d: SQLDialect) -> [String] {
        var s = [
            "DROP INDEX IF EXISTS requests_due_idx",
            "DROP INDEX IF EXISTS requests_remind_idx",
            "CREATE INDEX requests_due_idx ON requests (due_at) WHERE status = 'pending' AND due_at IS NOT NULL",
            "CREATE INDEX requests_remind_idx ON requests (remind_at) WHERE status = 'pending' AND remind_at IS NOT NULL",
        ]
        if d == .postgres {
            s += [
                "CREATE UNIQUE INDEX runs_unique_key_idx ON runs (unique_key) WHERE unique_key IS NOT NULL",
                "ALTER TABLE runs DROP CONSTRAINT IF EXISTS runs_unique_key_key",
                "ALTER TABLE runs SET (fillfactor = 80)",
                "ALTER TABLE requests SET (fillfactor = 80)",
            ]
        }
        return s
    }

    private static func v1(_ d: SQLDialect) -> [String] {
        let blob = d == .postgres ? "bytea" : "BLOB"
        let serial = d == .postgres ? "bigserial PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT"
        var s: [String] = [
            """
            CREATE TABLE runs (
                id text PRIMARY KEY,
                job text NOT NULL,
                status text NOT NULL CHECK (status IN ('queued','running','waiting','succeeded','rejected','failed','cancelled','expired')),
                attempt integer NOT NULL DEFAULT 1,
                rerun_of text REFERENCES runs(id),
                lease_owner text,
                lease_expires_at bigint,
                claims integer NOT NULL DEFAULT 0,
                requested_by text,
                unique_key text UNIQUE,
                input text NOT NULL,
                output text,
                error text,
                checkpoint_seq integer NOT NULL DEFAULT 0,
                not_before bigint,
                created_at bigint NOT NULL,
                started_at bigint,
                updated_at bigint NOT NULL,
                finished_at bigint,
                event_seq integer NOT NULL DEFAULT 0,
                last_hash text NOT NULL DEFAULT ''
            )
            """,
            "CREATE INDEX runs_runnable_idx ON runs (created_at) WHERE status IN ('queued','running')",
            "CREATE INDEX runs_job_idx ON runs (job, created_at)",
            "CREATE INDEX runs_created_idx ON runs (created_at)",
            """
            CREATE TABLE checkpoints (
                run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                seq integer NOT NULL,
                id text NOT NULL,
                superstep integer NOT NULL,
                parent_id text,
                data \(blob) NOT NULL,
                created_at bigint NOT NULL,
                PRIMARY KEY (run_id, seq),
                UNIQUE (run_id, id)
            )
            """,
            "CREATE INDEX checkpoints_id_idx ON checkpoints (id)",
            """
            CREATE TABLE requests (
                id text PRIMARY KEY,
                run_id text NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                executor_id text NOT NULL,
                step_id text,
                request_type text NOT NULL,
                request_data text NOT NULL,
                response_type text NOT NULL,
                status text NOT NULL CHECK (status IN ('pending','answered','expired','cancelled')),
                reviewers text NOT NULL DEFAULT '[]',
                quorum text NOT NULL DEFAULT 'any',
                reject_on text NOT NULL DEFAULT 'any',
                due_at bigint,
                remind_at bigint,
                reminders_sent integer NOT NULL DEFAULT 0,
                policy text,
                response text,
                decision text,
                answered_by text,
                answered_via text,
                answered_at bigint,
                delivered_at bigint,
                created_at bigint NOT NULL
            )
            """,
            "CREATE INDEX requests_run_idx ON requests (run_id)",
            "CREATE INDEX requests_pending_idx ON requests (created_at) WHERE status = 'pending'",
            "CREATE INDEX requests_due_idx ON requests (due_at) WHERE status = 'pending'",
            "CREATE INDEX requests_remind_idx ON requests (remind_at) WHERE status = 'pending'",
            """
            CREATE TABLE request_tokens (
                token_hash text PRIMARY KEY,
                request_id text NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
                run_id text NOT NULL,
                reviewer text NOT NULL,
                state text NOT NULL CHECK (state IN ('active','used','revoked')),
                expires_at bigint,
                message_id text,
                issued_at bigint NOT NULL,
                used_at bigint
            )
            """,
            "CREATE INDEX request_tokens_request_idx ON request_tokens (request_id)",
            """
            CREATE TABLE votes (
                request_id text NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
                reviewer text NOT NULL,
                verdict text NOT NULL CHECK (verdict IN ('approve','reject','value')),
                response text NOT NULL,
                reason text,
                channel text NOT NULL,
                via text,
                token_hash text,
                answered_at bigint NOT NULL,
                PRIMARY KEY (request_id, reviewer)
            )
            """,
            """
            CREATE TABLE events (
                id \(serial),
                run_id text NOT NULL,
                seq integer NOT NULL,
                kind text NOT NULL,
                actor text,
                data text NOT NULL,
                at bigint NOT NULL,
                prev_hash text NOT NULL,
                hash text NOT NULL,
                UNIQUE (run_id, seq)
            )
            """,
            """
            CREATE TABLE outbox (
                id \(serial),
                message_id text NOT NULL UNIQUE,
                kind text NOT NULL,
                recipient text NOT NULL,
                sender text,
                raw \(blob) NOT NULL,
                request_id text,
                run_id text,
                status text NOT NULL CHECK (status IN ('pending','sent','failed')),
                attempts integer NOT NULL DEFAULT 0,
                next_attempt_at bigint NOT NULL,
                last_error text,
                sent_at bigint,
                created_at bigint NOT NULL
            )
            """,
            "CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending'",
            """
            CREATE TABLE inbound (
                dedupe_key text PRIMARY KEY,
                path text,
                sender text,
                outcome text NOT NULL,
                reason text,
                request_id text,
                received_at bigint NOT NULL
            )
            """,
        ]
        func ts(_ column: String) -> String {
            d == .postgres ? "to_timestamp(\(column) / 1000.0)"
                : "strftime('%Y-%m-%dT%H:%M:%fZ', \(column) / 1000.0, 'unixepoch')"
        }
        s.append("""
            CREATE VIEW run_history AS
            SELECT r.id AS run_id, r.job, r.status, r.attempt, r.rerun_of, r.requested_by,
                   \(ts("r.created_at")) AS created, \(ts("r.started_at")) AS started,
                   \(ts("r.finished_at")) AS finished,
                   (r.finished_at - r.started_at) / 1000.0 AS duration_seconds,
                   (SELECT count(*) FROM requests q WHERE q.run_id = r.id) AS requests,
                   (SELECT count(*) FROM requests q WHERE q.run_id = r.id AND q.status = 'pending') AS pending_requests,
                   r.error, r.output
            FROM runs r
            """)
        s.append("""
            CREATE VIEW pending_requests AS
            SELECT q.id AS request_id, q.run_id, r.job, q.step_id, q.executor_id, q.request_type,
                   q.response_type, q.reviewers, q.quorum,
                   (SELECT count(*) FROM votes v WHERE v.request_id = q.id) AS votes,
                   \(ts("q.created_at")) AS requested, \(ts("q.due_at")) AS due,
                   \(ts("q.remind_at")) AS next_reminder, q.reminders_sent, q.request_data
            FROM requests q JOIN runs r ON r.id = q.run_id
            WHERE q.status = 'pending'
            """)
        if d == .postgres {
            s += [
                "COMMENT ON TABLE runs IS 'One row per workflow run. Times (*_at) are milliseconds since 1970 UTC; see the run_history view for timestamps.'",
                "COMMENT ON TABLE checkpoints IS 'The engine''s encoded checkpoint after each superstep, per run (seq 1, 2, …).'",
                "COMMENT ON TABLE requests IS 'Human requests (approvals, questions) raised by runs, with their decision.'",
                "COMMENT ON TABLE request_tokens IS 'One reply token per (request, reviewer); only the SHA-256 of the token is stored.'",
                "COMMENT ON TABLE votes IS 'Each reviewer''s answer to a request; the request records the deciding one.'",
                "COMMENT ON TABLE events IS 'Append-only audit trail per run; hash = sha256(prev_hash || newline || content), verify with signoff audit verify.'",
                "COMMENT ON TABLE outbox IS 'Mail waiting to be sent (transactional outbox) and its delivery attempts.'",
                "COMMENT ON TABLE inbound IS 'Every inbound message or response file and what the importer did with it.'",
                "COMMENT ON VIEW run_history IS 'Runs with readable timestamps, duration and request counts, for history queries.'",
                "COMMENT ON VIEW pending_requests IS 'Requests still waiting for a decision, with job, reviewers, votes so far, due and reminder times.'",
                "COMMENT ON COLUMN runs.lease_owner IS 'The runner currently executing the run (status running).'",
                "COMMENT ON COLUMN runs.claims IS 'How many times the run was claimed; the fencing token of the current lease.'",
                "COMMENT ON COLUMN runs.last_hash IS 'Hash of the newest event of this run (head of its audit chain).'",
            ]
        }
        return s
    }
}
