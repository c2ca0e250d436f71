#!/usr/bin/env bash
# Pack issue 27's studies (runs/study/confirmatory and, once it has started, runs/study/proxy_validity)
# into records.tar.gz beside this script, so that the next machine resumes them (resume.sh). Both finished (the
# confirmatory study 2026-12-07 23:51 UTC, the proxy-validity stage 2026-12-08 02:02 UTC): the committed tarball
# holds their final records, from which the analyses are rerun (README.md says how).
# Only records travel: frame stores (the study writes them again from the task data), training checkpoints and
# weights (*.pt, *.safetensors: several MB per training; a finished training is known by its result.json or
# final_metrics.json, and one killed mid-way starts again) and figures are left out, as are temporaries.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
MAIN=$(git -C "$HERE" rev-parse --show-toplevel)
STUDY_TREE=${STUDY_TREE:-$MAIN/../run-study}
folders=(runs/study/confirmatory)
[ -d "$STUDY_TREE/runs/study/proxy_validity" ] && folders+=(runs/study/proxy_validity)
tmp="$HERE/.records.tar.gz.tmp"
# A running study is paused (SIGSTOP to its process group, its worker processes included) while tar reads it: tar
# reads one folder after another, so without the pause a search's state.json could be newer than the evaluation
# records read before it, which no kill produces and a resume would not notice. Stopped, the study's files are
# what a kill at that instant would leave. It is continued on any exit.
groups=()
for pid in $(pgrep -f "search-study" || true); do
    if [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(cd "$STUDY_TREE" && pwd)" ]; then
        groups+=("$(ps -o pgid= -p "$pid" | tr -d ' ')")
    fi
done
if [ "${#groups[@]}" -gt 0 ]; then
    mapfile -t groups < <(printf '%s\n' "${groups[@]}" | sort -u)
    trap 'for g in "${groups[@]}"; do kill -CONT -- "-$g" 2>/dev/null || true; done' EXIT
    for g in "${groups[@]}"; do kill -STOP -- "-$g"; done
    echo "paused the running study (process group ${groups[*]}) while packing"
fi
# Unpaused (no study running here), tar exits 1 when a file was replaced while it read it: each is still whole.
status=0
tar czf "$tmp" -C "$STUDY_TREE" --exclude=frame_store --exclude='.*.tmp*' --exclude='*.pt' \
    --exclude='*.safetensors' --exclude='*.png' --exclude=predictions.txt --warning=no-file-changed \
    --ignore-failed-read "${folders[@]}" || status=$?
[ "$status" -le 1 ] || { rm -f "$tmp"; echo "tar failed ($status)" >&2; exit "$status"; }
mv "$tmp" "$HERE/records.tar.gz"
listing=$(tar tzf "$HERE/records.tar.gz")
echo "$(du -h "$HERE/records.tar.gz" | cut -f1): ${folders[*]};" \
     "$(grep -c '/evaluations/.*\.json$' <<< "$listing") evaluation records," \
     "$(grep -c '/best_choice\.json$' <<< "$listing") finished searches," \
     "$(grep -E '/(result|final_metrics)\.json$' <<< "$listing" | xargs -r -n1 dirname | sort -u | wc -l)" \
     "finished trainings"
