#ifndef SIGNOFF_CSQLITE_SHIM_H
#define SIGNOFF_CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_STATIC: SQLite uses the bound bytes where they are, until the binding is cleared.
static inline sqlite3_destructor_type signoff_sqlite_static(void) { return SQLITE_STATIC; }

/// sqlite3_config is variadic.
static inline int signoff_sqlite_config_multithread(void) { return sqlite3_config(SQLITE_CONFIG_MULTITHREAD); }
/// Memory statistics off: otherwise every SQLite allocation takes a process-wide mutex.
static inline int signoff_sqlite_config_memstatus(int on) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on); }
#endif
