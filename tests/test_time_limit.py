"""`run --time-limit`: training stops after the last epoch that fits, the rows of what finished are written, the
command exits 0 and the same command resumes. The clock is the test's own (no test here depends on the machine's
speed): each reading advances it by one step."""

import pytest

from rotnet_repro import runner as runner_mod
from rotnet_repro.cli import main
from rotnet_repro.config import PROFILES
from rotnet_repro.experiments import EXPERIMENTS, rotnet
from rotnet_repro.files import saved_epoch
from rotnet_repro.results import COLUMNS, read_results
from rotnet_repro.runner import Runner, TimeLimit, TimeUp, parse_duration

STABLE = [c for c in COLUMNS if c not in ("wall_s", "git_sha")]


class Steps:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float):
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("45m", 2700), ("2h", 7200), ("1h30m", 5400),
                                          ("1:30:00", 5400), ("0.5h", 1800), (" 10M ", 600)])
def test_a_duration_is_read_in_each_form(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["90", "", "h", "1:3:00", "-5m", "0s", "5 minutes", "1h-2m"])
def test_a_bad_time_limit_is_one_line_before_anything_is_written(tmp_path, capsys, text):
    assert main(["run", "table3_comparison", "--profile", "smoke", "--out", str(tmp_path / "o"),
                 f"--time-limit={text}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --time-limit") and len(err.splitlines()) == 1 and ("e.g." in err or "longer" in err)
    assert not (tmp_path / "o").exists()


def test_the_limit_stops_before_the_first_epoch_that_would_not_fit():
    limit = TimeLimit(100, now=Steps(10))  # read at 10: it ends at 110
    for e in range(5):  # epoch e + 1 starts at 20 + 20e and takes 10 s: the fifth starts at 100 with 10 s left
        limit.before_epoch(e)
        limit.epoch_done(e + 1)
    assert limit.epoch_s == 10
    with pytest.raises(TimeUp, match="before epoch 6"):  # at 120: no time left
        limit.before_epoch(5)
    assert "before epoch 6" in limit.stopped


def test_an_epoch_longer_than_the_time_left_is_not_started():
    limit = TimeLimit(1000, now=Steps(1))
    limit.before_epoch(0)  # at 2
    limit.now = Steps(0)  # the epoch takes 900 s
    limit.now.t = 902
    limit.epoch_done(1)
    limit.now.t = 950  # 52 s left, an epoch takes 900 s
    with pytest.raises(TimeUp, match="before epoch 2"):
        limit.before_epoch(1)


def test_run_stops_at_its_limit_exits_0_and_the_same_command_resumes_to_the_same_rows(tmp_path, monkeypatch, capsys):
    exp = EXPERIMENTS["table3_comparison"]
    whole = Runner(PROFILES["smoke"], tmp_path / "whole", device="cpu")
    whole.run_experiment(exp, seed=0)
    # every reading 50 s on: the limit (120 s) is read at 50, epoch 1 starts at 100 and ends at 150; at 200 no
    # time is left for epoch 2
    monkeypatch.setattr(runner_mod, "TimeLimit", lambda seconds: TimeLimit(seconds, now=Steps(50)))
    out = tmp_path / "cut"
    argv = ["run", "table3_comparison", "--profile", "smoke", "--out", str(out), "--device", "cpu"]
    assert main([*argv, "--time-limit", "2m"]) == 0
    said = capsys.readouterr().out
    assert "--time-limit reached" in said and "before epoch 2" in said and "resumes" in said
    folder = Runner(PROFILES["smoke"], out, device="cpu").folder(rotnet(PROFILES["smoke"], 0))
    assert saved_epoch(folder.ckpt) == 1 and not folder.finished  # the RotNet (trained first) stopped after epoch 1
    assert main(argv) == 0  # the same command, no limit: resumes from epoch 1
    assert "done in" in capsys.readouterr().out
    def table3(path):
        df = read_results(path)
        return df[df["experiment"] == exp.id][STABLE].sort_values(STABLE).reset_index(drop=True)

    assert table3(whole.results_path).equals(table3(out / "results" / "smoke.csv"))
