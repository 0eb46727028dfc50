"""The studies: one file each in studies/ (studies/README.md has the format), read here as typed
data. A study is one experiment of the paper: the parameter whose value names a run's arm, the
arms, the paper's numbers its reports print beside ours, and the claims its runs test, each with
where the paper makes it, the quantity, the paper's size and the range that counts as it, and the
condition under which a proxy run tests the paper's mechanism. Runs record their study and arm
(run.json), and the ledger (src/alexlab/report/claims.py) judges each claim on the runs of its
study alone.

Every effect is oriented so that the paper's direction is positive: an ablation's change in error
is `treatment - control` with the paper's choice undone in the treatment (the choice helps when it
is > 0), a speed ratio is `slow / fast` (> 1). Sizes, tolerances and thresholds are fixed in the
study's file before the runs they judge.

A study's file is data: read with yaml.safe_load, every key checked, nothing in it instantiated.
"""

import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alexlab.errors import UserError
from alexlab.layout import STUDIES_DIR
from alexlab.metric_keys import LOGGED

# What each kind of measure computes (src/alexlab/report/claims.py):
DIFFERENCE = "difference"  # metric(treatment) - metric(control), in points, paired by seed
# (held-out - training error, both of the final net in eval mode) of treatment - of control
GAP_DIFFERENCE = "gap difference"
SPEEDUP = "speedup"  # Figure 1: tanh / ReLU epochs to the target, rates chosen on other seeds
EPOCHS_RATIO = "epochs ratio"  # epochs to a fixed training error: treatment / control, by seed
SECONDS_RATIO = "seconds ratio"  # training time: treatment / control, by seed
ENSEMBLE_GAIN = "ensemble gain"  # one net's test error - the ensemble's, per test image
ERROR_VALUE = "error value"  # our test error itself, against the paper's
MEASURES = (
    DIFFERENCE,
    GAP_DIFFERENCE,
    SPEEDUP,
    EPOCHS_RATIO,
    SECONDS_RATIO,
    ENSEMBLE_GAIN,
    ERROR_VALUE,
)

# What a mechanism check measures on a claim's runs (src/alexlab/report/claims.py):
LRN_SHARE = "lrn share"  # LRN's neighbour term's share of its normalizer, over training
CHANNELS = "channels"  # the images' colour channels
GAP = "gap"  # an arm's held-out minus training error (eval mode), in points: does it overfit?
TOP5_ROOM = "top-5 room"  # the control's top-5 error, in points: is there any to lower?
EPOCHS_TRAINED = "epochs trained"  # the runs' epochs, against the recipe's
REACHES = "reaches"  # the share of an arm's runs that reach their target training error
WEIGHT_SHRINK = "weight shrink"  # 1 - the weights' norm with decay / without, paired by seed
CHECKS = (LRN_SHARE, CHANNELS, GAP, TOP5_ROOM, EPOCHS_TRAINED, REACHES, WEIGHT_SHRINK)

DATASETS = ("imagenet", "cifar10", "fashion_mnist")
# The reports a study's runs can render (python -m alexlab.report's): any study's arms compared,
# and the paper's own reports.
REPORT_KINDS = ("compare", "ablations", "lrn-cifar", "table1", "relu-speedup", "hyperband")
UNITS = ("points", "x", "%")


@dataclass(frozen=True)
class Check:
    """The condition under which a proxy's runs test the paper's mechanism: `measure` on the runs
    (of the arm `arm`, where it names one) must reach `threshold`."""

    measure: str
    threshold: float
    arm: str = ""


@dataclass(frozen=True)
class Claim:
    key: str
    claim: str  # the paper's statement, shortened
    source: str  # section, table or figure
    paper: str  # the paper's number, as it gives it
    paper_data: str  # the dataset the paper made it on: imagenet | cifar10
    measure: str  # one of MEASURES
    treatment: str = ""  # the arm with the paper's choice undone (or the slower one)
    control: str = ""  # the arm with the paper's choice
    metric: str = ""  # a difference's or an error value's metric key (metric_keys.py)
    target: float | None = None  # an epochs ratio's training error; None: the runs' own
    # An epochs ratio's curve, smoothed before the crossing: the mean over the trailing
    # `smoothing` epochs of checks (0: each check's own window).
    smoothing: float = 0.0
    unit: str = "points"  # of the effect: points (of error), x (a ratio) or % (an error)
    paper_effect: float | None = None  # the paper's effect in that unit, where it gives one
    # Sizes that count as the paper's: within `tolerance` of paper_effect (points; a factor for
    # x), or anything from paper_effect up when the paper says "over" (at_least).
    tolerance: float = 0.0
    at_least: bool = False
    proxy: str = ""  # what the comparison means on the small datasets run here
    check: Check | None = None  # on a proxy, the condition for testing the paper's mechanism
    beside: str = ""  # a second measure (of MEASURES) shown beside the verdict's, not judged
    # The claim's own plan, where it replaces its study's run.seeds: seeds fixed before their
    # runs, such as a confirmation on fresh seeds after the study's seeds served as its pilot.
    seeds: tuple[int, ...] = ()
    study: str = ""  # the study whose runs it is judged on (its file's name)

    @property
    def paper_sizes(self) -> tuple[float, float] | None:
        """The effects consistent with the paper's size; None: the paper gives no size."""
        if self.paper_effect is None:
            return None
        if self.at_least:
            return (self.paper_effect, float("inf"))
        if self.unit == "x":
            factor = max(self.tolerance, 1.0)
            return (self.paper_effect / factor, self.paper_effect * factor)
        return (self.paper_effect - self.tolerance, self.paper_effect + self.tolerance)


# What a run's setting may be in a study file: a value of the command line's KEY=VALUE, or a list
# that sweeps it.
SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class RateChoice:
    """A stage before the measured runs that chooses one learning rate per arm (Figure 1): a grid
    of rates per arm on `seeds`, from which `python -m alexlab.report chosen-rate` takes the rate
    that reaches the verdict's target soonest; the measured runs then use that rate alone on the
    study's seeds, which must be others."""

    seeds: tuple[int, ...]
    full_grid: bool = False  # every run to its end (no early_terminate): the hyperband report's
    data: dict[str, dict] = field(default_factory=dict)  # per dataset: settings over the runs'
    grid: dict[str, dict] = field(default_factory=dict)  # per dataset and arm: the rates


@dataclass(frozen=True)
class Report:
    """A report `python -m alexlab.report` renders from the study's runs: results/`out`.md."""

    kind: str  # the report (compare: each arm's errors beside the paper's)
    out: str  # its name below results/, "{data}" filled in
    label: str = ""  # the label it reads the study's runs under (relu-speedup's LABEL=DIR)
    beside: dict[str, str] = field(default_factory=dict)  # label: a further study it reads


@dataclass(frozen=True)
class Evaluation:
    """src/eval.py on the finished runs of one arm: each net and their average on the test set."""

    arm: str
    out: str  # the ensemble report's name below results/, "{data}" filled in


@dataclass(frozen=True)
class Runs:
    """How `python -m alexlab.reproduce` runs a study: its sweep file, with the study's arms and
    seeds and each dataset's settings over it, then its evaluation and reports."""

    sweep: str  # the sweep file; "{arm}" in its name: one file (and sweep) per arm
    seeds: tuple[int, ...]  # the seeds measured
    data: dict[str, dict]  # the datasets it runs on, each with its settings over the sweep file's
    settings: dict = field(default_factory=dict)  # on every dataset, after its own
    skip: dict[str, tuple] = field(default_factory=dict)  # per dataset: arms not run there
    choose_rate: RateChoice | None = None
    evaluate: Evaluation | None = None
    reports: tuple[Report, ...] = ()


@dataclass(frozen=True)
class Study:
    name: str  # its file's name: what its runs record (study.name)
    title: str  # what it tests, one line: its report's title
    arms_by: str | None  # the parameter whose value names a run's arm; None: one arm
    arms: tuple[str, ...] = ()  # the arms it compares, in its report's order
    # The paper's numbers its reports print beside ours, by arm (or the label a report names);
    # `paper_from`: the study whose numbers these arms share.
    paper: dict[str, str] = field(default_factory=dict)
    paper_from: str = ""
    proxy: str = ""  # its runs on the small datasets, in words: a claim's proxy says "{proxy}"
    # The training error its verdict counts epochs to, per dataset (on the paper's, the paper's),
    # fixed before the runs.
    targets: dict[str, float] = field(default_factory=dict)
    directory: str = "{name}-{data}"  # its sweep's directory below results/sweeps/, per dataset
    claims: tuple[Claim, ...] = ()
    # How its runs are made (python -m alexlab.reproduce); `run_from`: the study whose `run` this
    # one's patches (JSON merge patch: a key given replaces that study's, null removes it).
    run: Runs | None = None
    run_from: str = ""

    def sweep_dir(self, data: str) -> str:
        return self.directory.replace("{name}", self.name).replace("{data}", data)


def load(name: str, directories: Iterable[Path] = ()) -> Study:
    """The study `name` from studies/ or the further `directories`."""
    return load_each([name], directories)[0]


def load_each(names: Iterable[str], directories: Iterable[Path] = ()) -> list[Study]:
    """The studies `names`, in that order, their files read once."""
    found = {study.name: study for study in load_all(directories)}
    for name in names:
        if name not in found:
            raise UserError(f"no study {name!r}: the studies are {', '.join(sorted(found))}")
    return [found[name] for name in names]


def load_all(directories: Iterable[Path] = ()) -> list[Study]:
    """Every study in studies/ and the further `directories`, by name; each file checked."""
    paths = sorted(STUDIES_DIR.glob("*.yaml"))
    for directory in directories:
        if not directory.is_dir():
            raise UserError(f"{directory}: no such folder of study files")
        paths += sorted(directory.glob("*.yaml"))
    files: dict[str, tuple[Path, Any]] = {}
    for path in paths:
        if path.stem in files:
            raise UserError(f"{path}: a second study named {path.stem!r}")
        files[path.stem] = (path, read_yaml(path))
    studies = {
        name: read_study(path, with_run_from(name, files)) for name, (path, _) in files.items()
    }
    keys = [claim.key for study in studies.values() for claim in study.claims]
    if repeated := sorted({key for key in keys if keys.count(key) > 1}):
        raise UserError(f"claims {', '.join(repeated)}: declared by more than one study")
    for study in studies.values():
        if study.paper_from and study.paper_from not in studies:
            raise UserError(f"{study.name}: paper_from names no study ({study.paper_from!r})")
    return sorted(studies.values(), key=lambda study: study.name)


def claims(directories: Iterable[Path] = ()) -> list[Claim]:
    """Every study's claims, the studies by name, each study's in its file's order."""
    return [claim for study in load_all(directories) for claim in study.claims]


def claims_and_plans(
    directories: Iterable[Path] = (),
) -> tuple[list[Claim], dict[str, tuple[int, ...]]]:
    """Every study's claims (as `claims`) and each study's seeds (run.seeds), fixed before its
    runs: what its claims are judged on; the study files read once for both."""
    found = load_all(directories)
    return [c for study in found for c in study.claims], {
        study.name: study.run.seeds for study in found if study.run
    }


def paper_numbers(study: Study, directories: Iterable[Path] = ()) -> dict[str, str]:
    """The paper's numbers a study's reports print: its own, over those of `paper_from`."""
    shared = load(study.paper_from, directories).paper if study.paper_from else {}
    return shared | study.paper


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UserError(f"{path}: not a study file ({error})") from error


def with_run_from(name: str, files: dict[str, tuple[Path, Any]]) -> Any:
    """A study file's mapping, its `run` patched over that of the study it names in `run_from`."""
    path, data = files[name]
    if not isinstance(data, dict) or not data.get("run_from"):
        return data
    base = data["run_from"]
    if base not in files or base == name:
        raise UserError(f"{path}: run_from names no other study ({base!r})")
    base_path, base_data = files[base]
    if not isinstance(base_data, dict) or not isinstance(base_data.get("run"), dict):
        raise UserError(f"{path}: run_from: {base_path} has no run to start from")
    if base_data.get("run_from"):
        raise UserError(f"{path}: run_from: {base} takes its own run from another study")
    return data | {"run": merge_patch(base_data["run"], data.get("run", {}))}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386's JSON merge patch: a mapping's keys patched one by one, null removing a key,
    anything else replacing the target."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def read_study(path: Path, data: Any) -> Study:
    where = str(path)
    fields = build(Study, data, where, fixed={"name": path.stem})
    claims = tuple(read_claim(key, value, fields, where) for key, value in fields["claims"].items())
    run = read_runs(fields["run"], where) if fields["run"] is not None else None
    study = Study(**fields | {"claims": claims, "arms": tuple(fields["arms"]), "run": run})
    for claim in claims:
        check_arms(study, claim, where)
    if run is not None:
        check_runs(study, run, where)
    return study


def read_runs(data: Any, where: str) -> Runs:
    where = f"{where}: run"
    fields = build(Runs, data, where)
    for key in ("data", "settings", "skip"):
        fields[key] = dict(fields[key])
    for dataset, settings in fields["data"].items():
        fields["data"][dataset] = read_settings(settings or {}, f"{where}.data.{dataset}")
    read_settings(fields["settings"], f"{where}.settings")
    fields["skip"] = {k: tuple(names(v, f"{where}.skip.{k}")) for k, v in fields["skip"].items()}
    if fields["choose_rate"] is not None:
        choice = build(RateChoice, fields["choose_rate"], f"{where}.choose_rate")
        for dataset, settings in choice["data"].items():
            read_settings(settings or {}, f"{where}.choose_rate.data.{dataset}")
        for dataset, rates in choice["grid"].items():
            read_settings(rates or {}, f"{where}.choose_rate.grid.{dataset}")
        fields["choose_rate"] = RateChoice(**choice | {"seeds": tuple(choice["seeds"])})
    if fields["evaluate"] is not None:
        fields["evaluate"] = Evaluation(
            **build(Evaluation, fields["evaluate"], f"{where}.evaluate")
        )
    reports = []
    for index, report in enumerate(fields["reports"]):
        report = Report(**build(Report, report, f"{where}.reports[{index}]"))
        if report.kind not in REPORT_KINDS:
            raise UserError(
                f"{where}.reports[{index}].kind: {report.kind!r}; valid: {', '.join(REPORT_KINDS)}"
            )
        reports.append(report)
    return Runs(**fields | {"seeds": tuple(fields["seeds"]), "reports": tuple(reports)})


def read_settings(settings: Any, where: str) -> dict:
    """A mapping of a run's keys to values of its command line (KEY=VALUE), or to lists of them
    (a grid); null is written "null", as on a command line."""
    if not isinstance(settings, dict):
        raise UserError(f"{where}: a mapping of a run's keys to values, not {settings!r}")
    for key, value in settings.items():
        values = value if isinstance(value, list) else [value]
        if (
            not isinstance(key, str)
            or not values
            or not all(isinstance(v, SCALARS) for v in values)
        ):
            raise UserError(
                f'{where}.{key}: {value!r} is not a value or a list of values (null: "null")'
            )
    return settings


def names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: {value!r} is not a list of names")
    return value


def check_runs(study: Study, run: Runs, where: str) -> None:
    """What a study's run section names exists: its datasets, arms and studies' labels."""
    where = f"{where}: run"
    choice = run.choose_rate
    datasets = {
        f"{where}.data": run.data,
        f"{where}.skip": run.skip,
        f"{where}.choose_rate.data": choice.data if choice else {},
        f"{where}.choose_rate.grid": choice.grid if choice else {},
    }
    for key, by_data in datasets.items():
        for dataset in by_data:
            if dataset not in DATASETS:
                raise UserError(f"{key}.{dataset}: no such dataset; valid: {', '.join(DATASETS)}")
    arms = {f"{where}.skip.{dataset}": skipped for dataset, skipped in run.skip.items()} | {
        f"{where}.choose_rate.grid.{d}": tuple(g)
        for d, g in (choice.grid if choice else {}).items()
    }
    if run.evaluate is not None:
        arms[f"{where}.evaluate.arm"] = (run.evaluate.arm,)
    for key, named in arms.items():
        for arm in named:
            if arm not in study.arms:
                raise UserError(f"{key}: {arm!r} is no arm; its arms: {', '.join(study.arms)}")
    if study.arms_by is None:
        raise UserError(f"{where}: its study has no arms_by, the parameter its runs differ in")
    if choice is not None and set(choice.seeds) & set(run.seeds):
        raise UserError(
            f"{where}.choose_rate.seeds: {list(choice.seeds)} share seeds with run.seeds "
            f"{list(run.seeds)}: a rate is measured on seeds other than those that chose it"
        )


def read_claim(key: str, data: Any, study: dict[str, Any], where: str) -> Claim:
    where = f"{where}: claims.{key}"
    fields = build(Claim, data, where, fixed={"key": key, "study": study["name"]})
    if fields["check"] is not None:
        fields["check"] = Check(**build(Check, fields["check"], f"{where}.check"))
    fields["proxy"] = fields["proxy"].replace("{proxy}", study["proxy"])
    allowed = {"measure": MEASURES, "paper_data": DATASETS, "unit": UNITS}
    if fields["beside"]:
        allowed["beside"] = MEASURES
    for name, values in allowed.items():
        if fields[name] not in values:
            raise UserError(f"{where}.{name}: {fields[name]!r}; valid: {', '.join(values)}")
    if fields["metric"] and fields["metric"] not in LOGGED:
        raise UserError(
            f"{where}.metric: {fields['metric']!r} is no metric a run logs (alexlab/metric_keys.py)"
        )
    check_sizes(fields, where)
    if fields["check"] is not None and fields["check"].measure not in CHECKS:
        raise UserError(f"{where}.check.measure: valid: {', '.join(CHECKS)}")
    return Claim(**fields | {"seeds": tuple(fields["seeds"])})


def check_sizes(fields: dict[str, Any], where: str) -> None:
    """The paper's size on the paper's side of no effect (effects are oriented so that it is
    positive: above 1x for a ratio), and a tolerance that widens it: a ratio's is a factor of at
    least 1 (or 0, none)."""
    no_effect = 1.0 if fields["unit"] == "x" else 0.0
    effect, tolerance = fields["paper_effect"], fields["tolerance"]
    if effect is not None and effect <= no_effect:
        raise UserError(
            f"{where}.paper_effect: {effect} is not on the paper's side of no effect "
            f"({no_effect:g}): give the effect of undoing the paper's choice, above {no_effect:g}"
        )
    if tolerance < 0 or (fields["unit"] == "x" and 0 < tolerance < 1):
        valid = "a factor of at least 1, or 0" if fields["unit"] == "x" else "0 or more"
        raise UserError(f"{where}.tolerance: {tolerance}; valid: {valid}")


def check_arms(study: Study, claim: Claim, where: str) -> None:
    """A claim's arms are its study's: a misspelt arm would match no run and read as not run."""
    named = {
        "treatment": claim.treatment,
        "control": claim.control,
        "check.arm": claim.check.arm if claim.check else "",
    }
    for name, arm in named.items():
        if arm and arm not in study.arms:
            valid = ", ".join(study.arms) or "none (the study has one arm)"
            raise UserError(f"{where}: claims.{claim.key}.{name}: {arm!r}; its arms: {valid}")


def build(kind: type, data: Any, where: str, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields of a `kind` from a mapping in a file: every key one of its fields, every field
    without a default given, each value of its field's type; `fixed` are set by the reader."""
    fixed = fixed or {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: a mapping of keys, not {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(kind) if f.name not in fixed}
    if unknown := sorted(set(data) - set(names), key=str):
        raise UserError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(names)}")
    fields = dict(fixed)
    for name, spec in names.items():
        if name in data:
            key = f"{where}.{name}" if ": " in where else f"{where}: {name}"
            fields[name] = checked(data[name], spec.type, key)
        elif spec.default is not dataclasses.MISSING:
            fields[name] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            fields[name] = spec.default_factory()
        else:
            raise UserError(f"{where}: no {name!r}; it is needed")
    return fields


# How a study file writes each field's type: claims as a mapping by key, arms as a list.
FILE_TYPES = {tuple[Claim, ...]: dict, tuple[str, ...]: list, tuple[int, ...]: list}
FILE_TYPES |= {tuple[Report, ...]: list, dict: dict, dict[str, dict]: dict}
FILE_TYPES |= {dict[str, tuple]: dict}


def checked(value: Any, annotation: Any, where: str) -> Any:
    """`value` if it is of the field's type (a number for a float; a Check or a Claim, a mapping
    that its own reader checks; the arms and the paper's numbers, strings), else one error
    line."""
    if annotation in FILE_TYPES:
        allowed: tuple[type, ...] = (FILE_TYPES[annotation],)
    else:
        options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
        allowed = tuple(typing.get_origin(t) or t for t in options or (annotation,))
        allowed = tuple(dict if t in MAPPINGS else t for t in allowed)
        allowed += (int,) if float in allowed else ()
    valid = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if isinstance(value, float):
        valid = valid and math.isfinite(value)
    if valid and annotation in ITEM_TYPES:
        items = [*value.items()] if isinstance(value, dict) else [("", v) for v in value]
        kind = ITEM_TYPES[annotation]
        valid = all(
            isinstance(k, str) and isinstance(v, kind) and not isinstance(v, bool) for k, v in items
        )
    if not valid:
        raise UserError(f"{where}: {value!r} is not {DESCRIBED.get(annotation, 'valid')}")
    return value


# The types a file writes as a mapping that their own reader checks.
MAPPINGS = (Check, Claim, Runs, RateChoice, Evaluation)
# The types of a list's or a mapping's items.
ITEM_TYPES = {
    tuple[str, ...]: (str,),
    tuple[int, ...]: (int,),
    dict[str, str]: (str,),
    dict[str, float]: (int, float),
    dict[str, dict]: (dict, type(None)),
}

DESCRIBED = {
    str: "text",
    str | None: "a name, or null",
    float: "a number",
    float | None: "a number, or null",
    bool: "true or false",
    tuple[str, ...]: "a list of names",
    dict[str, str]: "a mapping of names to text",
    dict[str, float]: "a mapping of names to numbers",
    tuple[Claim, ...]: "a mapping of claims by key",
    Check | None: "a check's mapping, or null",
    tuple[int, ...]: "a list of whole numbers",
    dict: "a mapping",
    dict[str, dict]: "a mapping of datasets to mappings",
    dict[str, tuple]: "a mapping of datasets to lists",
    tuple[Report, ...]: "a list of reports",
    Runs | None: "a run's mapping, or null",
    RateChoice | None: "a mapping, or null",
    Evaluation | None: "a mapping, or null",
}
