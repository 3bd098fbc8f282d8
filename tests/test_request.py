"""One run request: what `run` does, as one call a script or a notebook makes (rotnet_repro.request)."""

from rotnet_repro.cli import _parser
from rotnet_repro.request import RunRequest, run_request
from rotnet_repro.results import read_results


def test_a_script_runs_an_experiment_with_one_call_as_the_command_does(tmp_path):
    said = []
    n = run_request(RunRequest(["table3_comparison"], profile="smoke", out=str(tmp_path), device="cpu",
                               columns="^accuracy$"), say=said.append)
    df = read_results(tmp_path / "results" / "smoke.csv")
    ours = df[df["experiment"] == "table3_comparison"]
    assert n == len(df) > 0 and len(ours) > 0 and set(ours["column"]) == {"accuracy"}
    assert said[-1].startswith("done in") and f"{n} new rows" in said[-1]
    assert run_request(RunRequest(["table3_comparison"], profile="smoke", out=str(tmp_path), device="cpu",
                                  columns="^accuracy$", dry_run=True), say=said.append) == 0
    assert "nothing to train" in said[-1]


def test_a_request_made_in_code_gives_its_helpers_the_command_line_it_stands_for():
    req = RunRequest(["table1_block_depth", "table3_comparison"], profile="smoke", seeds=2, rows="RotNet 4",
                     workers=3, no_train=True, overrides=["lr=0.05"], time_limit="45m")
    line = req.command_line()
    args = _parser().parse_args(line)
    assert RunRequest.from_args(args) == RunRequest(**{**vars(req), "argv": []})
    assert RunRequest.from_args(_parser().parse_args(["run", "all", "--out", "x"])).command_line() == \
        ["run", "all", "--out", "x"]  # given on the command line: the helpers get that line
