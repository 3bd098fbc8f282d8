"""The protocol on a cluster, through submitit (SLURM, or its local executor anywhere):

    python -m rotnet_repro submit all --profile paper --out /shared/rotnet --partition gpu --timeout-min 120

One job per run group: each RotNet alone, then a job for the heads on it that starts once the RotNet's job has
finished (`afterok` on SLURM; the local executor waits for it), and one job for the runs without a RotNet
(supervised NINs, random-init heads). Every job is `Runner.run_cells` on a shared `--out`: the run folders' file
locks keep each run trained once, and a job that finds its RotNet missing trains it (nothing is lost if a
dependency is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import PROFILES, Kind, apply_overrides, custom_label
from .experiments import resolve


@dataclass(frozen=True)
class Job:
    """A group of cells: (experiment id, seed, backbone seed, run id) of the cells' own runs."""

    name: str
    cells: tuple[tuple[str, int, int, str], ...]
    after: str = ""  # the name of the job it waits for


def groups(experiments: list[str], profile: str, overrides: list[str], seeds: range,
           backbone_seed: int | None = None) -> list[Job]:
    """The run groups of a command: every RotNet's job, then its heads' job (after it), and the rest."""
    p = apply_overrides(PROFILES[profile], overrides)
    rotnets: dict[str, list] = {}
    heads: dict[str, list] = {}
    rest: list = []
    for seed in seeds:
        b = seed if backbone_seed is None else backbone_seed
        for exp in resolve(experiments):
            for c in exp.build(p, seed, b):
                key = (exp.id, seed, b, c.spec.run_id)
                if c.spec.kind == Kind.ROTNET:
                    rotnets.setdefault(c.spec.run_id, []).append(key)
                elif c.spec.backbone is not None:
                    heads.setdefault(c.spec.backbone.run_id, []).append(key)
                    rotnets.setdefault(c.spec.backbone.run_id, [])
                else:
                    rest.append(key)
    jobs = [Job(r, tuple(dict.fromkeys(v))) for r, v in rotnets.items()]
    jobs += [Job(f"heads-on-{r}", tuple(dict.fromkeys(v)), r) for r, v in heads.items()]
    if rest:
        jobs.append(Job("baselines", tuple(dict.fromkeys(rest))))
    return jobs


def run_job(job: Job, profile: str, overrides: list[str], out: str, data_dir: str | None, device: str) -> int:
    """What one cluster job runs: the group's cells (and, where missing, the runs they need)."""
    from .experiments import EXPERIMENTS
    from .runner import Runner

    base = PROFILES[profile]
    p = apply_overrides(base, overrides)
    runner = Runner(p, out, data_dir, False, device, custom_label(base, p))
    from .planner import compile_as_measured

    compile_as_measured(runner.dev, out)  # as `run --compile auto`
    runner.save_label_profile()  # as `run --set ...`: the override's profile beside its CSV
    wanted = {(e, s, b): set() for e, s, b, _ in job.cells}
    for e, s, b, run_id in job.cells:
        wanted[(e, s, b)].add(run_id)
    cells = [(EXPERIMENTS[e], c) for (e, s, b), ids in wanted.items() for c in EXPERIMENTS[e].build(p, s, b)
             if c.spec.run_id in ids]
    runner.plan([c for _, c in cells])
    return runner.run_cells(cells)


def submit(experiments: list[str], profile: str, overrides: list[str], out: str, seeds: range,
           backbone_seed: int | None = None, data_dir: str | None = None, device: str = "auto",
           cluster: str | None = None, parameters: dict | None = None) -> list[tuple[Job, object]]:
    """Submit the groups; returns (job, submitit job) pairs. `cluster`: None (SLURM where there is one, else
    local), "slurm", "local" or "debug"."""
    try:
        import submitit
    except ImportError:
        from .errors import UserError

        raise UserError("submit needs submitit: pip install submitit (or the package's `cluster` extra)") from None
    executor = submitit.AutoExecutor(folder=str(Path(out) / "submitit" / "%j"), cluster=cluster)
    executor.update_parameters(**(parameters or {}))
    slurm = executor.cluster == "slurm"
    submitted: dict[str, object] = {}
    pairs = []
    for job in groups(experiments, profile, overrides, seeds, backbone_seed):
        params = {"name": f"rotnet-repro-{job.name}"}
        if job.after in submitted:
            if slurm:
                params["slurm_additional_parameters"] = {"dependency": f"afterok:{submitted[job.after].job_id}"}
            else:  # the local executors have no dependencies: wait for the RotNet's job
                submitted[job.after].result()
        executor.update_parameters(**params)
        sj = executor.submit(run_job, job, profile, overrides, out, data_dir, device)
        submitted[job.name] = sj
        pairs.append((job, sj))
    return pairs
