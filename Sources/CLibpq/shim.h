#ifndef SIGNOFF_CLIBPQ_SHIM_H
#define SIGNOFF_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
