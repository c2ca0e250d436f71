#!/usr/bin/env bash
# Resume issue 27's long runs on a new machine: the confirmatory study from its committed snapshot, at the commit
# it was registered and started from (af4a724), then the proxy-validity stage. Both are resumable: run this again
# after any stop. Both have finished (2026-12-08 02:02 UTC): run now, it unpacks their final records and each
# study only rewrites its analysis. Logs go to $LOGS (default ../logs beside this checkout). Start it in the
# background, niced (the studies inherit the priority):
#
#   (setsid nice -n 10 bash docs/search_results/study_confirmatory/resume.sh > /dev/null 2>&1 &)
#
# STUDY_TREE (default ../run-study, beside this checkout) is a clean worktree at af4a724 with the rep-flow kernel
# built in place; the snapshot is unpacked there only when the study folder is missing.
set -euo pipefail
MAIN=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
STUDY_COMMIT=af4a724
absolute() { mkdir -p "$1" && (cd "$1" && pwd); }  # relative paths mean: from where this was started
LOGS=$(absolute "${LOGS:-$MAIN/../logs}")
STUDY_TREE=${STUDY_TREE:-$MAIN/../run-study}
if [ ! -d "$STUDY_TREE" ]; then
    STUDY_TREE=$(cd "$(dirname "$STUDY_TREE")" && pwd)/$(basename "$STUDY_TREE")
    git -C "$MAIN" worktree prune
    git -C "$MAIN" worktree add --detach "$STUDY_TREE" "$STUDY_COMMIT"
fi
STUDY_TREE=$(cd "$STUDY_TREE" && pwd)
cd "$STUDY_TREE"
if [ "$(git rev-parse HEAD)" != "$(git -C "$MAIN" rev-parse "$STUDY_COMMIT^{commit}")" ]; then
    echo "$STUDY_TREE is not at $STUDY_COMMIT" >&2
    exit 2
fi
python setup.py build_ext --inplace > "$LOGS/build_ext.log" 2>&1
if [ ! -d runs/study/confirmatory ]; then  # the snapshot holds both studies' records (snapshot.sh)
    tar xzf "$MAIN/docs/search_results/study_confirmatory/records.tar.gz"
fi
export PYTHONPATH=$PWD/src
assemblenet search-study configs/search/study_confirmatory.yaml --no-progress >> "$LOGS/confirmatory.log" 2>&1
# The proxy-validity stage reads data/compositional (issue 27's 8-frame protocol, make-synthetic seed 0).
if [ ! -f data/compositional/kinetics_train.csv ]; then
    assemblenet make-synthetic data/compositional --task compositional --frames 8 >> "$LOGS/proxy_validity.log" 2>&1
fi
assemblenet search-study configs/search/study_proxy_validity.yaml --stage proxy-validity --no-progress \
    >> "$LOGS/proxy_validity.log" 2>&1
