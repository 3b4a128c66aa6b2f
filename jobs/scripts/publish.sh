#!/bin/sh
# Publishes the approved notes. A real job would upload them; this one says what it would do.
# Inputs arrive as environment variables: SIGNOFF_INPUT_VERSION, and SIGNOFF_RUN_ID for the run.
set -eu
echo "published release notes ${SIGNOFF_INPUT_VERSION:-?} (run ${SIGNOFF_RUN_ID:-?})"
