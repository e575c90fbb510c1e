/*
 * migrate.h: the schema (DESIGN §3) as ordered, numbered migrations applied
 * at core start-up.
 *
 * All pending migrations run in one transaction under a transaction-level
 * advisory lock, so several servers starting at once against one database
 * apply each migration exactly once; each applied version is recorded in
 * wf_schema_migrations. Applying twice is a no-op.
 */
#ifndef WF_MIGRATE_H
#define WF_MIGRATE_H

#include "db.h"

/* Applies every pending migration. Returns the number applied (>= 0), or -1
 * with the reason logged (the transaction is rolled back). */
int migrate_apply(struct db_conn *c) __attribute__((warn_unused_result));

#endif
