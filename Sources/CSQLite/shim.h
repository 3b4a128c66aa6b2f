#ifndef SIGNOFF_CSQLITE_SHIM_H
#define SIGNOFF_CSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a cast macro Swift cannot import.
static inline sqlite3_destructor_type signoff_sqlite_transient(void) { return SQLITE_TRANSIENT; }

/// sqlite3_config is variadic.
static inline int signoff_sqlite_config_multithread(void) { return sqlite3_config(SQLITE_CONFIG_MULTITHREAD); }
/// Memory statistics off: otherwise every SQLite allocation takes a process-wide mutex.
static inline int signoff_sqlite_config_memstatus(int on) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, on); }
#endif
