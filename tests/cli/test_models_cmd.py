import json
import subprocess
import sys

import pytest
import yaml

from assemblenet.cli.main import main
from assemblenet.graph import graph_to_dict, official_graph


def test_models_lists_presets(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("assemblenet50 "))
    assert "asn50" in row and " 50 " in row and "36,900,957" in row and "500.9" in row and "ICLR 2020" in row


def test_models_json_matches_the_registry(capsys):
    from assemblenet.models import model_info

    assert main(["models", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["assemblenet101"]["params"] == model_info("assemblenet101").params
    assert rows["assemblenet101"]["depth"] == 101


def test_describe_prints_the_shape_walk_and_plots(tmp_path, capsys):
    png = tmp_path / "g.png"
    assert main(["describe", "assemblenet50", "--frames", "32", "--size", "224", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:4].strip().isdigit()}
    assert "L3" in rows["14"] and "[2048, 32, 7, 7]" in rows["14"] and "inputs=[12, 13]" in rows["14"]
    assert all("[32, 32, 56, 56]" in rows[str(stem)] for stem in range(4))
    assert "flow layer  [2, 32, 224, 224]" in out
    assert "total trainable params 36,900,957" in out
    assert "0 -> 6   0.138  fixed" in out
    assert png.stat().st_size > 10_000
    assert f"graph drawn to {png}" in out


def test_describe_lists_unused_nodes_of_a_lenient_graph(tmp_path, capsys):
    path = tmp_path / "asnp50.json"
    path.write_text(json.dumps(graph_to_dict(official_graph("asnp50"))))
    with pytest.warns(UserWarning, match=r"node\(s\) \[9\] reach no output"):
        assert main(["describe", str(path), "--frames", "2", "--size", "32", "--depth", "26",
                     "--width-multiplier", "0.125"]) == 0
    out = capsys.readouterr().out
    assert "object stem [151, 2, 8, 8]" in out
    assert "nodes whose output nothing reads (pruned: no layers, not computed): [9]" in out


def test_describe_accepts_a_graph_file(tmp_path, capsys):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(graph_to_dict(official_graph("asn50", with_weights=False))))
    assert main(["describe", str(path), "--frames", "4", "--size", "32", "--depth", "26",
                 "--width-multiplier", "0.125", "--num-classes", "7"]) == 0
    out = capsys.readouterr().out
    assert "logits [1, 7]" in out and "learnable" in out


@pytest.mark.parametrize("args,message", [
    (["describe", "assemblenet5"], "unknown model 'assemblenet5'"),
    (["describe", "assemblenet50", "--frames", "0"], "argument --frames: expected a positive integer, got 0"),
    (["describe", "assemblenet50", "--size", "-3"], "argument --size: expected a positive integer, got -3"),
    (["describe", "assemblenet50", "--depth", "49"], "argument --depth: invalid choice"),
    (["describe", "missing.yaml"], "graph file not found: missing.yaml"),
    (["describe", "assemblenet50", "--frames", "1"], "--frames must be at least 2"),
    (["describe", "assemblenet50", "--plot", "g.jpg"], "--plot g.jpg: expected a file name ending in .png"),
    (["describe", "assemblenet50", "--width-multiplier", "x"], "argument --width-multiplier: expected a positive"),
])
def test_bad_arguments_give_one_line(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_malformed_graph_file_from_the_console_script(tmp_path):
    bad = graph_to_dict(official_graph("asn50"))
    bad["nodes"][6]["inputs"] = [0, 9]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = subprocess.run([sys.executable, "-m", "assemblenet.cli.main", "describe", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"assemblenet: error: {path}: node 6: input 9 must be the index of an earlier node (0..5)"
    ]


def test_malformed_yaml_names_the_file(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("nodes: [\n  - {level: 0\n")
    assert main(["describe", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"assemblenet: error: {path}: not valid YAML")


def test_models_and_describe_show_assemblenet_plus(tmp_path, capsys):
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("assemblenet_plus50 "))
    assert "asnp50" in row and " peer " in row and " yes " in row and "48,054,173" in row
    png = tmp_path / "plus.png"
    assert main(["describe", "assemblenet_plus50", "--depth", "26", "--width-multiplier", "0.125", "--frames", "4",
                 "--size", "64", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "attention peer, object stem (151 classes)" in out
    assert "attention: peer" in out and "   12 <- [4, 2, 3, 0, 1, 5, 6, 7, 8, 9, 10, 11]  strongest " in out
    assert png.stat().st_size > 10_000
    assert main(["describe", "assemblenet_plus50_rgbflow", "--depth", "26", "--width-multiplier", "0.125",
                 "--frames", "4", "--size", "64", "--attention", "self"]) == 0
    assert "attention: self" in capsys.readouterr().out


def test_models_and_describe_show_assemblenet_plus_lite(tmp_path, capsys):
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("assemblenet_plus_lite "))
    assert "asnp_lite" in row and " peer " in row and " no " in row and "50,042,581" in row and "376.8" in row
    assert main(["describe", "assemblenet_plus_lite", "--width-multiplier", "0.25", "--frames", "4",
                 "--size", "64"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():  # the node table's row, not the attention list's
        if line[:4].strip().isdigit():
            rows.setdefault(line.split()[0], line)
    # Stems at half resolution; node 10 with its quarter-width triple (432, 432, 192) * 0.25.
    assert "rgb stem    [6, 4, 32, 32]" in rows["0"]
    assert "[48, 4, 2, 2]" in rows["10"] and "filters=[108, 108, 48]" in rows["10"]
    assert "   10 <- [1, 0, 2, 3, 4, 5, 6, 7, 8, 9]  strongest " in out
    # A lite graph file (filter triples) is described with the lite builder.
    path = tmp_path / "lite.yaml"
    path.write_text(yaml.safe_dump(graph_to_dict(official_graph("asnp_lite"))))
    assert main(["describe", str(path), "--width-multiplier", "0.25", "--frames", "4", "--size", "64"]) == 0
    assert "filters=[7, 7, 3]" in capsys.readouterr().out
    assert main(["describe", "assemblenet_plus_lite", "--depth", "50"]) == 2
    assert "AssembleNet++lite has no depth option" in capsys.readouterr().err
