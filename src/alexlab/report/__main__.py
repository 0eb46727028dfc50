"""`python -m alexlab.report REPORT SWEEP_DIR... --out results/NAME`: write NAME.md and NAME.png
from finished runs and print the table. `curves RUN_DIR...` compares single runs' training curves;
`ensemble EVAL_DIR` scores single nets and their ensemble from the probabilities src/eval.py saved;
`claims DIR... [--studies DIR]` gives every claim of the studies (studies/, and further folders
of study files) a verdict (NAME.md and NAME.json); `chosen-rate
GRID_DIR` prints Figure 1's one learning rate for the activation of a grid of rates; `more-seeds
DIR... --budget MINUTES` plans more seeds for the inconclusive rows they could decide and prints
the sweeps' arguments; `hyperband
SWEEP_DIR... --sweep-file FILE` replays FILE's early_terminate on sweeps run in full; `sweeps
DIR...` tables every sweep's runs by the parameters it varies. A DIR is any tree of runs, whichever
launcher made them: a wandb agent's (logs/train/wandb_sweeps/ID), a Hydra multirun's, or
`python -m alexlab.sweep`'s. With --wandb, each DIR is wandb's record of runs instead: a sweep on
wandb's server (ENTITY/PROJECT/SWEEP_ID) or a folder of offline wandb runs (run-*.wandb files),
for runs made on several machines."""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from alexlab import studies
from alexlab.errors import UserError
from alexlab.report.claims import claims_report
from alexlab.report.compare import compare_report
from alexlab.report.curves import curves_report
from alexlab.report.ensembles import ensemble_report
from alexlab.report.figure1 import chosen_rate, figure1_report
from alexlab.report.hyperband import hyperband_report
from alexlab.report.runs import RunSource
from alexlab.report.seeds import more_seeds_report
from alexlab.report.sweeps import sweeps_report
from alexlab.report.wandb_runs import WandbSweep
from alexlab.sweep.spec import load_sweep

REPORTS = (
    "compare",
    "relu-speedup",
    "chosen-rate",
    "more-seeds",
    "ablations",
    "lrn-cifar",
    "table1",
    "curves",
    "ensemble",
    "claims",
    "hyperband",
    "sweeps",
)
# The paper's reports that compare a study's arms, and their study (studies/); `compare --study
# NAME` compares any study's.
COMPARED = {"ablations": "ablations", "lrn-cifar": "lrn_cifar", "table1": "table1"}
# The reports that read files besides the runs' records (evaluations, run directories), not wandb.
FILES_ONLY = ("curves", "ensemble", "claims", "more-seeds")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m alexlab.report", description=__doc__)
    parser.add_argument("report", choices=REPORTS)
    parser.add_argument(
        "sweeps",
        nargs="+",
        metavar="SWEEP_DIR",
        help="sweep directories; relu-speedup takes LABEL=DIR, one per set of conditions; "
        "curves takes run directories, ensemble an evaluation's directory (src/eval.py)",
    )
    parser.add_argument(
        "--out", type=Path, help="results/NAME (.md and .png); every report but chosen-rate"
    )
    parser.add_argument("--sweep-file", type=Path, help="hyperband: the early_terminate to replay")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="more-seeds: minutes of machine time [60]"
    )
    parser.add_argument(
        "--studies",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="claims, compare: a further folder of study files beside studies/ (repeatable)",
    )
    parser.add_argument("--study", help="compare: the study whose arms it compares (studies/)")
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="read the runs from wandb's record: each SWEEP_DIR is ENTITY/PROJECT/SWEEP_ID on "
        "wandb's server or a folder of offline runs (run-*.wandb)",
    )
    args = parser.parse_args(argv)
    source = WandbSweep if args.wandb else Path
    try:
        if args.wandb and args.report in FILES_ONLY:
            reads_wandb = ", ".join(r for r in REPORTS if r not in FILES_ONLY)
            raise UserError(
                f"{args.report} reads run directories, not --wandb (it serves {reads_wandb})"
            )
        if args.report == "chosen-rate":
            print(f"{chosen_rate(source(args.sweeps[0])):g}")
            return
        if args.out is None:
            raise UserError(f"{args.report} needs --out results/NAME")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.report == "more-seeds":
            print(more_seeds_report([Path(d) for d in args.sweeps], args.budget, args.out))
            return
        if args.report == "hyperband":
            if args.sweep_file is None:
                raise UserError("hyperband needs --sweep-file FILE (its early_terminate section)")
            config = load_sweep(args.sweep_file)
            print(hyperband_report([source(d) for d in args.sweeps], config, args.out))
            return
        if args.report == "claims":
            print(claims_report([Path(d) for d in args.sweeps], args.out, args.studies))
            return
        if args.report == "compare":
            if args.study is None:
                raise UserError("compare needs --study NAME, the study whose arms it compares")
            study = studies.load(args.study, args.studies)
            print(compare_report(source(args.sweeps[0]), study, args.out))
            return
        print(make_report(args.report, args.sweeps, args.out, source))
    except UserError as error:
        sys.exit(f"error: {error}")


def make_report(
    report: str, sweeps: list[str], out: Path, source: Callable[[str], RunSource] = Path
) -> str:
    if report == "curves":
        return curves_report([Path(run) for run in sweeps], out)
    if report == "ensemble":
        return ensemble_report(Path(sweeps[0]), out)
    if report == "sweeps":
        return sweeps_report([source(d) for d in sweeps], out)
    if report == "relu-speedup":
        conditions = [tuple(s.split("=", 1)) if "=" in s else (Path(s).name, s) for s in sweeps]
        return figure1_report([(label, source(d)) for label, d in conditions], out)
    study = studies.load(COMPARED[report])
    return compare_report(source(sweeps[0]), study, out)


if __name__ == "__main__":
    main()
