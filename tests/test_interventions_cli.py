"""steve-qt window|ablate|steer|lens|lm: bad input gives one line and exit 2; lm's table."""

import csv
import io

import pytest

from steve_qt.cli import main


@pytest.mark.parametrize("argv, message", [
    (["window", "{wav}", "--k", "0"], "k must be a positive"),
    (["window", "{wav}", "--k", "5,-1"], "k must be a positive"),
    (["window", "{wav}", "--k", "five"], "whole numbers"),
    (["window", "{wav}", "--k", "5", "--layers", "7"], "encoder layer 7 does not exist"),
    (["ablate", "{wav}", "--span", "1.0", "99"], "outside the audio"),
    (["ablate", "{wav}", "--span", "2.0", "1.0"], "is after its end"),
    (["steer", "{wav}", "--site", "encoder.blocks.2.mlp.1", "--feature", "1536", "--scale", "0"],
     "feature 1536 does not exist: there are 1536 neurons"),
    (["steer", "{wav}", "--site", "encoder.blocks.9", "--feature", "0", "--scale", "0"],
     "unknown site 'encoder.blocks.9'; valid sites"),
    (["steer", "{wav}", "--site", "encoder.blocks.0", "--feature", "0", "--scale", "2",
      "--span", "0", "50"], "outside the audio"),
    (["steer", "{wav}", "--feature", "0", "--scale", "2"], "give --site"),
    (["steer", "{wav}", "--site", "encoder.blocks.0", "--feature", "0", "--scale", "2",
      "--sae", "/nonexistent/sae"], "/nonexistent/sae"),
    (["lm", "--prompt", ""], "prompt is empty"),
    (["lm"], "give --prompt"),
    (["lm", "--prompt", "x", "--top", "0"], "--top must be positive"),
    (["lens", "{wav}", "--out", "/nonexistent/dir"], "does not exist"),
])
def test_bad_input_one_line(argv, message, dark_suit, capsys):
    code = main([a.format(wav=dark_suit) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("steve-qt: error:") and message in err, err


def test_lm_prints_top_tokens_and_neighbours(capsys, tmp_path):
    assert main(["lm", "--prompt", " rug", "--top", "3", "--neighbours", " rug"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["kind", "rank", "token_id", "token", "score", "prob"]
    assert [r[0] for r in rows[1:]] == ["next"] * 3 + ["neighbour"] * 3
    assert float(rows[1][4]) >= float(rows[2][4]) >= float(rows[3][4])
    out = tmp_path / "lm.csv"
    assert main(["lm", "--prompt", " rug", "--top", "3", "--out", str(out)]) == 0
    assert main(["lm", "--prompt", " rug", "--top", "3", "--out", str(out)]) == 2  # no overwrite
