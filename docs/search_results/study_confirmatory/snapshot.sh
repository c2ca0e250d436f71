#!/usr/bin/env bash
# Pack the running confirmatory study's records into in_progress_snapshot.tar.gz beside this script, so that the
# next machine resumes it (resume.sh). Frame stores are left out (the study writes them again from the task data);
# a record being written at this moment is written atomically, so the archive holds it whole or not at all.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MAIN=$(git -C "$HERE" rev-parse --show-toplevel)
STUDY_TREE=${STUDY_TREE:-$MAIN/../run-study}
tmp="$HERE/.in_progress_snapshot.tar.gz.tmp"
# A file replaced while tar reads it (the study rewrites its logs atomically) makes tar exit 1: the archive then
# holds the old or the new version, each whole, and both resume.
status=0
tar czf "$tmp" -C "$STUDY_TREE" --exclude=frame_store --exclude='.*.tmp*' --warning=no-file-changed \
    --ignore-failed-read runs/study/confirmatory || status=$?
[ "$status" -le 1 ] || { rm -f "$tmp"; echo "tar failed ($status)" >&2; exit "$status"; }
mv "$tmp" "$HERE/in_progress_snapshot.tar.gz"
echo "$(tar tzf "$HERE/in_progress_snapshot.tar.gz" | grep -c '/evaluations/.*\.json$') evaluation records," \
     "$(tar tzf "$HERE/in_progress_snapshot.tar.gz" | grep -c '/best_choice\.json$') finished searches"
