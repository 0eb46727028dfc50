"""`python -m alexlab.reproduce STUDY... --data DATASET`: run studies as their files say
(studies/, the `run` section): each study's sweep with its arms, seeds and the dataset's
settings; Figure 1's learning rate chosen on its own seeds before the runs that measure it; the
evaluations; then the reports, under results/. The same command again resumes: each sweep skips
its finished runs and an evaluation already written is kept. --dry-run prints the commands and
starts nothing; each sweep prints its runs and their estimated time before it starts."""

import argparse
import math
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alexlab import studies
from alexlab.errors import UserError, check_range
from alexlab.layout import ROOT
from alexlab.report import __main__ as report_cli
from alexlab.report.figure1 import chosen_rate
from alexlab.report.runs import load_runs
from alexlab.rundir import FINISHED
from alexlab.studies import Study
from alexlab.sweep import __main__ as sweep_cli
from alexlab.sweep.spec import add_settings_option

SWEEP, REPORT, EVAL = "alexlab.sweep", "alexlab.report", "src/eval.py"
RATE = "optim.lr"  # what a study's choose_rate stage chooses (report/figure1.py's chosen-rate)
# SMOKE: each run is conf/debug/smoke.yaml's few batches of one epoch, reaching its target error
# (0.999) at its first check, so that the reports that time it have a number. Last on a sweep's
# line: it wins over the study's settings, as those win over debug=smoke's.
SMOKE_RUNS = [
    *("--set", "debug=smoke", "--set", "trainer.max_epochs=1"),
    *("--set", "trainer.check_val_every_n_epoch=1", "--set", "train.target_error=0.999"),
    "--no-estimate",
]
# A sweep runs one seed and starts at most two runs; a choose_rate grid, the first rate on its
# selection seeds (a grid lists them first), and its measured sweep one run.
SMOKE_COUNT, SMOKE_GRID_COUNT, SMOKE_MEASURED_COUNT = 2, 3, 1


@dataclass(frozen=True)
class Step:
    """One command of a study's recipe: `program` with `args`. A sweep whose learning rate is
    chosen on the grid in `rate_from` gets `--set optim.lr=RATE` when it starts; an evaluation
    scores the finished runs of arm `arm` in `runs_of`."""

    program: str
    args: tuple[str, ...]
    rate_from: Path | None = None
    runs_of: Path | None = None
    arm: str = ""

    def command(self, rate: float | None = None, runs: Sequence[Path] = ()) -> list[str]:
        args = list(self.args)
        if self.rate_from is not None:
            args += ["--set", f"{RATE}={'CHOSEN' if rate is None else f'{rate:g}'}"]
        if self.runs_of is not None:
            paths = ",".join(map(str, runs)) or f"<the {self.arm} runs of {self.runs_of}>"
            args = [f"ckpt_paths=[{paths}]", *args]
        return args

    def shown(self) -> str:
        """The command as --dry-run prints it: a chosen rate and an evaluation's runs named."""
        line = shlex.join(self.command())
        if self.rate_from is not None:
            line += f"   # {RATE}: the rate chosen on {self.rate_from}"
        return (
            f"python -m {self.program} {line}" if self.program != EVAL else f"python {EVAL} {line}"
        )


def plan(
    names: Sequence[str],
    data: str,
    results: Path,
    *,
    seeds: Sequence[int] | None = None,
    settings: Sequence[str] = (),
    parallel: int = 1,
    smoke: bool = False,
    directories: Sequence[Path] = (),
) -> list[Step]:
    """The commands that run `names` on `data`: every study's sweeps, then the evaluations,
    then the reports (a report may read several studies' runs)."""
    chosen = studies.load_each(names, directories)
    for study in chosen:
        if study.run is None:
            raise UserError(f"study {study.name}: its file has no run section: nothing to run")
    runnable = [study for study in chosen if data in study.run.data]
    if not runnable:
        on = "; ".join(f"{s.name}: {', '.join(s.run.data)}" for s in chosen)
        raise UserError(f"data {data!r}: no study of {', '.join(names)} runs on it ({on})")
    for study in chosen:
        if study not in runnable:
            print(
                f"{study.name}: not run on {data} (its file runs it on {', '.join(study.run.data)})"
            )
    sweeps_dir = results / "sweeps"
    extra = [arg for setting in settings for arg in ("--set", setting)]
    steps, evaluations, reports = [], [], []
    for study in runnable:
        directory = sweeps_dir / study.sweep_dir(data)
        steps += study_sweeps(study, data, directory, seeds, extra, parallel, smoke)
        if study.run.evaluate is not None:
            evaluations += evaluation(study, data, directory, results, smoke)
        reports += [
            report_step(study, report, data, directory, results, directories)
            for report in study.run.reports
        ]
    return steps + evaluations + reports


def study_sweeps(
    study: Study,
    data: str,
    directory: Path,
    seeds: Sequence[int] | None,
    extra: list[str],
    parallel: int,
    smoke: bool,
) -> list[Step]:
    run = study.run
    measured_seeds = list(seeds) if seeds is not None else list(run.seeds)
    base = run.data[data] | run.settings
    identity = {"study.name": study.name, "study.arms_by": study.arms_by}
    arms = [arm for arm in study.arms if arm not in run.skip.get(data, ())]
    per_arm = "{arm}" in run.sweep

    def sweep(arm: str | None, where: Path, values: dict, flags: list[str], count: int) -> Step:
        file = run.sweep.replace("{arm}", arm) if arm else run.sweep
        named = identity | ({} if per_arm else {study.arms_by: arms if len(arms) > 1 else arms[0]})
        args = [file, "--dir", str(where), "--parallel", str(parallel), *flags]
        args += [
            arg for key, value in (base | values).items() for arg in ("--set", setting(key, value))
        ]
        args += [
            arg for key, name in named.items() for arg in ("--set", f"{key}={yaml_text(name)}")
        ]
        args += extra + ([*SMOKE_RUNS, "--count", str(count)] if smoke else [])
        return Step(SWEEP, tuple(args))

    choice = run.choose_rate
    if choice is None:
        values = {"seed": [0] if smoke else measured_seeds}
        if per_arm:
            return [sweep(arm, directory / arm, values, [], SMOKE_COUNT) for arm in arms]
        return [sweep(None, directory, values, [], SMOKE_COUNT)]
    full = ["--no-early-terminate"] if choice.full_grid else []
    grids = [
        sweep(
            arm,
            directory / arm,
            choice.data.get(data, {}) | grid_of(choice, data, arm) | {"seed": list(choice.seeds)},
            full,
            SMOKE_GRID_COUNT,
        )
        for arm in arms
    ]
    measured = []
    for arm in arms:
        step = sweep(
            arm,
            directory / f"measured-{arm}",
            {"seed": measured_seeds},
            ["--no-early-terminate"],
            SMOKE_MEASURED_COUNT,
        )
        measured.append(Step(SWEEP, step.args, rate_from=directory / arm))
    return grids + measured


def grid_of(choice: studies.RateChoice, data: str, arm: str) -> dict[str, Any]:
    """An arm's grid of rates on `data` where the study narrows it, else the sweep file's."""
    rates = choice.grid.get(data, {}).get(arm)
    return {RATE: rates} if rates is not None else {}


def setting(key: str, value: Any) -> str:
    """KEY=VALUE as `python -m alexlab.sweep --set` reads it (YAML): a study file's text as it is
    written there, a number as YAML writes it, a list of them as a list."""
    if isinstance(value, list):
        return f"{key}=[{','.join(map(text, value))}]"
    return f"{key}={text(value)}"


def text(value: Any) -> str:
    return value if isinstance(value, str) else yaml_text(value)


def yaml_text(value: Any) -> str:
    """`value` in YAML's flow style: what yaml.safe_load reads back as `value` (a name such as
    "off", which YAML reads as false, quoted)."""
    dumped = yaml.safe_dump(value, default_flow_style=True, width=math.inf)
    return dumped.removesuffix("\n").removesuffix("\n...")


def evaluation(study: Study, data: str, directory: Path, results: Path, smoke: bool) -> list[Step]:
    """src/eval.py on the finished runs of the study's evaluated arm, then the ensemble report."""
    spec = study.run.evaluate
    args = [f"hydra.run.dir={directory / 'eval'}", *(["debug=smoke"] if smoke else [])]
    out = str(results / spec.out.replace("{data}", data))
    return [
        Step(EVAL, tuple(args), runs_of=directory, arm=spec.arm),
        Step(REPORT, ("ensemble", str(directory / "eval"), "--out", out)),
    ]


def report_step(
    study: Study,
    report: studies.Report,
    data: str,
    directory: Path,
    results: Path,
    directories: Sequence[Path],
) -> Step:
    out = ["--out", str(results / report.out.replace("{data}", data))]
    sweeps_dir = directory.parent
    if report.kind == "hyperband":  # the grids of rates, each arm's, replayed
        arms = list(study.arms)
        reads = [str(directory / arm) for arm in arms]
        sweep_file = study.run.sweep.replace("{arm}", arms[0])
        return Step(REPORT, ("hyperband", *reads, "--sweep-file", sweep_file, *out))
    reads = [f"{report.label}={directory}" if report.label else str(directory)]
    for label, name in report.beside.items():
        reads.append(f"{label}={sweeps_dir / studies.load(name, directories).sweep_dir(data)}")
    if report.kind == "compare":
        out += ["--study", study.name, *(arg for d in directories for arg in ("--studies", str(d)))]
    return Step(REPORT, (report.kind, *reads, *out))


def run_step(step: Step) -> None:
    """Runs `step` in this process (a sweep, a report) or as src/eval.py's; a failure exits."""
    if step.program == SWEEP:
        rate = chosen_rate(step.rate_from) if step.rate_from is not None else None
        print(f"\n$ {step.shown() if rate is None else shlex.join(step.command(rate))}", flush=True)
        sweep_cli.main(step.command(rate))
    elif step.program == REPORT:
        print(f"\n$ {step.shown()}", flush=True)
        report_cli.main(list(step.args))
    else:
        evaluated = step.runs_of / "eval" / "results.json"
        if evaluated.is_file():
            print(f"\n{evaluated}: kept (remove it to evaluate again)")
            return
        runs = [
            run.directory
            for run in load_runs(step.runs_of)
            if run.arm == step.arm and run.state == FINISHED
        ]
        if not runs:
            raise UserError(f"{step.runs_of}: no finished {step.arm} run to evaluate")
        command = [sys.executable, str(ROOT / EVAL), *step.command(runs=runs)]
        print(f"\n$ {shlex.join(command[1:])}", flush=True)
        if subprocess.run(command).returncode != 0:
            sys.exit(f"error: {EVAL} failed on the {step.arm} runs of {step.runs_of}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alexlab.reproduce", description=__doc__)
    parser.add_argument("studies", nargs="+", metavar="STUDY", help="a study's name (studies/)")
    parser.add_argument("--data", default="fashion_mnist", help="the dataset [fashion_mnist]")
    parser.add_argument("--results", type=Path, help="results/ [logs/smoke/results with --smoke]")
    parser.add_argument(
        "--seeds", type=yaml.safe_load, help="the seeds measured, over the study's: [0,1]"
    )
    add_settings_option(
        parser, "a setting of every run, after the study's (trainer.max_epochs=2, data.subset=500)"
    )
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time [1]")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the whole recipe in minutes: a few batches a run, one or two runs a sweep",
    )
    parser.add_argument("--only", choices=["evaluate"], help="only the evaluations and reports")
    parser.add_argument(
        "--studies",
        dest="directories",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a further folder of study files beside studies/ (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands; run nothing")
    args = parser.parse_args(argv)
    try:
        steps = requested(args)
        if args.dry_run:
            print("\n".join(step.shown() for step in steps))
            return
        for step in steps:
            run_step(step)
    except UserError as error:
        sys.exit(f"error: {error}")


def requested(args: argparse.Namespace) -> list[Step]:
    """The steps the command line asks for, its values checked."""
    check_range("--parallel", args.parallel, 1, math.inf, integer=True)
    seeds = args.seeds
    if seeds is not None and not (
        isinstance(seeds, list) and seeds and all(type(seed) is int for seed in seeds)
    ):
        raise UserError(f"--seeds {seeds!r}: a list of whole numbers, e.g. [0,1]")
    steps = plan(
        args.studies,
        args.data,
        args.results or Path("logs/smoke/results" if args.smoke else "results"),
        seeds=seeds,
        settings=args.settings,
        parallel=args.parallel,
        smoke=args.smoke,
        directories=args.directories,
    )
    return [step for step in steps if args.only != "evaluate" or step.program != SWEEP]


if __name__ == "__main__":
    main()
