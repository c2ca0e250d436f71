"""Side-by-side cost of one proxy evaluation, 48 steps at lr 0.1 (configs/search/compositional.yaml) against 240
steps at lr 0.05 (configs/search/proxy_variants/s240_lr005.yaml), on the same graph (s00 of the proxy-validity
stage) and trial seed, one torch thread (as each of the search's two local workers), alternating, 2 repeats each;
the first call of the run also fills the frame caches. Run from a checkout whose runs/ holds the follow-up's
graphs and whose data/compositional holds issue 27's task (the config's header says how):

    PYTHONPATH=src python docs/search_results/proxy_validity_s240/time_proxy.py > timing.json
"""
import json
import time
from pathlib import Path

import torch

from assemblenet.graph.io import load_graph
from assemblenet.runtime import machine_info
from assemblenet.search.config import load_search_config
from assemblenet.search.fitness import build_fitness

PROXIES = {"s48_lr0.1": "configs/search/compositional.yaml",
           "s240_lr0.05": "configs/search/proxy_variants/s240_lr005.yaml"}


def main() -> None:
    torch.set_num_threads(1)
    graph = load_graph(next(Path("runs/study/proxy_validity_s240/proxy_validity/graphs").glob("s00-*.yaml")))
    out = {"machine": machine_info()["signature"], "torch_threads": 1, "rows": []}
    fitness = {name: build_fitness(load_search_config(path)) for name, path in PROXIES.items()}
    for repeat in range(2):
        for name, fit in fitness.items():
            start = time.perf_counter()
            result = fit(graph, seed=12345)
            out["rows"].append({"proxy": name, "repeat": repeat, "wall_s": round(time.perf_counter() - start, 2),
                                "fitness": result.fitness})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
