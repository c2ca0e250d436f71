"""Copy the study outputs (runs/study/compositional) into docs/search_results/study_compositional and paste
study.md's tables between the markers in docs/search.md. Run from anywhere: python docs/search_results/update_study_docs.py"""

import re, shutil, sys, json
from pathlib import Path
root = Path(__file__).resolve().parents[2]
out = root / "runs/study/compositional"
dest = root / "docs/search_results/study_compositional"
for name in ("study.json", "study.md", "study.png", "proxy_vs_test.png", "study_log.jsonl"):
    if (out / name).is_file():
        shutil.copyfile(out / name, dest / name)
md = (out / "study.md").read_text()
sections = re.split(r"(?m)^## ", md)
keep = {}
for sec in sections[1:]:
    title, _, body = sec.partition("\n")
    keep[title.strip()] = body.strip()
parts = []
for title in ("Final best fitness", "Guided evolution against each strategy", "Mutations", "Retrained best graphs",
              "Fixed wirings (modality table)"):
    if title in keep:
        body = keep[title].replace("](study.png)", "](search_results/study_compositional/study.png)")
        body = body.replace("](proxy_vs_test.png)", "](search_results/study_compositional/proxy_vs_test.png)")
        parts.append(f"#### {title}\n\n{body}\n")
text = "\n".join(parts)
doc = (root / "docs/search.md").read_text()
begin, end = "<!-- study tables: begin -->", "<!-- study tables: end -->"
assert begin in doc and end in doc
doc = doc[:doc.index(begin) + len(begin)] + "\n" + text + "\n" + doc[doc.index(end):]
(root / "docs/search.md").write_text(doc)
print("embedded", list(keep))
