"""Copy a study's outputs into docs/search_results/study_compositional and paste study.md's tables between the
markers in docs/search.md.

    python docs/search_results/update_study_docs.py [STUDY_FOLDER]    # default: runs/study/compositional
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEST = ROOT / "docs/search_results/study_compositional"
FILES = ("study.json", "study.md", "study.png", "proxy_vs_test.png", "study_log.jsonl")
SECTIONS = ("Final best fitness", "Guided evolution against each strategy", "Mutations", "Cost",
            "Retrained best graphs", "Fixed wirings (modality table)")
BEGIN, END = "<!-- study tables: begin -->", "<!-- study tables: end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", nargs="?", default=str(ROOT / "runs/study/compositional"))
    study = Path(parser.parse_args().study)
    DEST.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (study / name).is_file():
            shutil.copyfile(study / name, DEST / name)
    sections = {}
    for section in re.split(r"(?m)^## ", (study / "study.md").read_text())[1:]:
        title, _, body = section.partition("\n")
        sections[title.strip()] = body.strip()
    link = "](search_results/study_compositional/"

    def relinked(text: str) -> str:
        for figure in ("study.png", "proxy_vs_test.png"):
            text = text.replace("](" + figure, link + figure)
        return text

    parts = [f"#### {title}\n\n{relinked(sections[title])}\n" for title in SECTIONS if title in sections]
    doc_path = ROOT / "docs/search.md"
    doc = doc_path.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{doc_path}: the markers {BEGIN} and {END} are missing")
    doc = doc[:doc.index(BEGIN) + len(BEGIN)] + "\n" + "\n".join(parts) + "\n" + doc[doc.index(END):]
    doc_path.write_text(doc)
    print("embedded", [title for title in SECTIONS if title in sections], "from", study)


if __name__ == "__main__":
    main()
