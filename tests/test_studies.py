"""The studies (studies/*.yaml): each file read as typed data with every key checked, each claim's
paper numbers declared in one place, and a bad file one error line naming the file and the key."""

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from alexlab import studies
from alexlab.errors import UserError
from alexlab.report import __main__ as report_cli
from alexlab.report.__main__ import main as report_main
from alexlab.report.stats import NOT_RUN
from alexlab.sweep.spec import load_sweep

# Where a study's facts could be written a second time.
SOURCES = ["src", "conf", "studies", "sweeps", "Makefile"]


def test_every_study_loads_with_its_claims_and_their_arms():
    found = {study.name: study for study in studies.load_all()}
    assert {path.stem for path in (REPO / "studies").glob("*.yaml")} == set(found)
    claims = studies.claims()
    assert len({claim.key for claim in claims}) == len(claims) == 20
    for study in found.values():
        assert all(claim.study == study.name for claim in study.claims)
        for claim in study.claims:  # an arm a claim compares is one its study runs
            assert {claim.treatment, claim.control} - {""} <= set(study.arms), claim.key
    lrn = studies.load("ablations_lrn")
    assert (lrn.arms_by, lrn.arms, lrn.sweep_dir("cifar10")) == (
        "ablation",
        ("baseline", "no_lrn"),
        "ablations-cifar10-lrn",
    )
    # A claim's proxy names its study's runs once, in the study's `proxy`.
    [top1, _] = lrn.claims
    assert top1.proxy.startswith(lrn.proxy + "; LRN as the 2012 source's")
    assert studies.paper_numbers(lrn)["no_lrn"] == "+1.4 / +1.2"  # the ablations' own


def files_holding(text: str) -> list[str]:
    found = subprocess.run(
        ["grep", "-rlF", "--", text, *SOURCES], cwd=REPO, capture_output=True, text=True
    )
    return found.stdout.split()


def test_each_of_the_papers_numbers_is_written_in_one_place():
    numbers = {claim.paper for claim in studies.claims()}
    numbers |= {text for study in studies.load_all() for text in study.paper.values()}
    numbers = {text for text in numbers if len(text) > 4}  # "6", "13%": too short to grep
    assert len(numbers) > 25
    for text in sorted(numbers):
        assert len(files_holding(text)) == 1, (text, files_holding(text))


GOOD = {
    "title": "two arms",
    "arms_by": "model.activation",
    "arms": ["relu", "tanh"],
    "claims": {
        "faster": {
            "claim": "relu is faster",
            "source": "§3.1",
            "paper": "6x",
            "paper_data": "cifar10",
            "measure": "difference",
            "treatment": "tanh",
            "control": "relu",
            "metric": "test/err_top1",
        }
    },
    "run": {
        "sweep": "sweeps/ablations.yaml",
        "seeds": [0],
        "data": {"fashion_mnist": {"experiment": "fashion_mnist", "ablation": "baseline"}},
    },
}


def with_change(path: list[str], value) -> dict:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    "path, value, message",
    [
        (["titel"], "x", "unknown key 'titel'; valid: title, arms_by"),
        (["title"], None, "no 'title'; it is needed"),
        (["arms"], "relu", "arms: 'relu' is not a list of names"),
        (["arms"], ["relu", 3], "arms: ['relu', 3] is not a list of names"),
        (["claims", "faster", "measure"], "diference", "claims.faster.measure: 'diference'"),
        (["claims", "faster", "paper_data"], "mnist", "claims.faster.paper_data: 'mnist'"),
        (["claims", "faster", "treatment"], "gelu", "claims.faster.treatment: 'gelu'; its arms"),
        (["claims", "faster", "metric"], "test/err", "'test/err' is no metric a run logs"),
        (
            ["claims", "faster", "paper_effect"],
            "big",
            "paper_effect: 'big' is not a number, or null",
        ),
        (
            ["claims", "faster", "paper_effect"],
            float("nan"),
            "paper_effect: nan is not a number, or null",
        ),
        (["claims", "faster", "at_least"], "yes", "at_least: 'yes' is not true or false"),
        (["claims", "faster", "check"], {"measure": "gap"}, "check: no 'threshold'"),
        (["claims", "faster"], ["x"], "claims.faster: a mapping of keys, not list"),
        (["run", "data", "mnist"], {}, "run.data.mnist: no such dataset; valid: imagenet"),
        (["run", "seeds"], [0.5], "run.seeds: [0.5] is not a list of whole numbers"),
        (["run", "sweeps"], "x.yaml", "run: unknown key 'sweeps'; valid: sweep, seeds"),
        (["run", "skip"], {"fashion_mnist": ["gelu"]}, "run.skip.fashion_mnist: 'gelu' is no arm"),
        (
            ["run", "data", "fashion_mnist", "data.subset"],
            {"a": 1},
            "run.data.fashion_mnist.data.subset: {'a': 1} is not a value or a list of values",
        ),
        (["run", "reports"], [{"kind": "compare"}], "run.reports[0]: no 'out'; it is needed"),
        (
            ["run", "reports"],
            [{"kind": "x", "out": "x"}],
            "run.reports[0].kind: 'x'; valid: compare",
        ),
        (["run", "choose_rate"], {"seeds": [0, 1]}, "run.choose_rate.seeds: [0, 1] share seeds"),
        (["run", "evaluate"], {"arm": "gelu", "out": "x"}, "run.evaluate.arm: 'gelu' is no arm"),
        (["run_from"], "nothing", "run_from names no other study ('nothing')"),
    ],
)
def test_a_bad_study_file_is_one_line_naming_the_file_and_key(tmp_path, path, value, message):
    study = tmp_path / "mine.yaml"
    study.write_text(yaml.safe_dump(with_change(path, value)))
    with pytest.raises(UserError) as refused:
        studies.load("mine", [tmp_path])
    assert str(refused.value).startswith(f"{study}: ") and message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_studies_from_another_folder_join_and_may_not_repeat_a_name_or_claim(tmp_path):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(GOOD))
    assert studies.load("mine", [tmp_path]).claims[0].key == "faster"
    assert "faster" in {claim.key for claim in studies.claims([tmp_path])}
    (tmp_path / "ablations.yaml").write_text(yaml.safe_dump(GOOD))
    with pytest.raises(UserError, match="a second study named 'ablations'"):
        studies.load_all([tmp_path])
    (tmp_path / "ablations.yaml").unlink()
    (tmp_path / "copy.yaml").write_text(yaml.safe_dump(GOOD))
    with pytest.raises(UserError, match="claims faster: declared by more than one study"):
        studies.load_all([tmp_path])
    with pytest.raises(UserError, match="no study 'nothing': the studies are ablations"):
        studies.load("nothing")
    with pytest.raises(UserError, match="no such folder of study files"):
        studies.load_all([Path(tmp_path / "missing")])


def test_a_study_from_another_folder_gets_its_ledger_row_not_run_until_its_runs_exist(
    tmp_path, capsys
):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(GOOD))
    out = tmp_path / "claims"
    sweeps = REPO / "results" / "sweeps"
    report_main(["claims", str(sweeps), "--studies", str(tmp_path), "--out", str(out)])
    assert "| relu is faster | §3.1 | 6x | CIFAR-10 |" in capsys.readouterr().out
    rows = {row["key"]: row for row in json.loads(out.with_suffix(".json").read_text())}
    assert rows["faster"]["verdict"] == NOT_RUN and rows["faster"]["data"] == "CIFAR-10"
    assert rows["lrn_top1"]["n"] > 0  # the other studies' rows are judged as before


def test_each_sweep_file_sweeps_the_arms_and_seeds_of_the_study_it_records():
    # A sweep file serves wandb's own `wandb sweep` as it is, so it restates its study's grid:
    # here it must equal the study's (other studies that run it narrow it: ablations_lrn).
    by_name = {study.name: study for study in studies.load_all()}
    used = {
        study.run.sweep.replace("{arm}", arm)
        for study in by_name.values()
        if study.run is not None
        for arm in study.arms
    }
    files = sorted(path.relative_to(REPO).as_posix() for path in (REPO / "sweeps").glob("*.yaml"))
    assert sorted(used) == files  # every study's file exists, and every file serves a study
    for file in files:
        parameters = load_sweep(REPO / file)["parameters"]
        study = by_name[parameters["study.name"]["value"]]
        assert parameters["study.arms_by"]["value"] == study.arms_by, file
        arms = parameters[study.arms_by]
        expected = (
            [file.removesuffix(".yaml").rsplit("_", 1)[1]]
            if "{arm}" in study.run.sweep
            else list(study.arms)
        )
        assert arms.get("values", [arms.get("value")]) == expected, file
        choice = study.run.choose_rate
        seeds = choice.seeds if choice else study.run.seeds
        assert parameters["seed"]["values"] == list(seeds), file


def test_every_report_a_study_can_render_is_one_the_report_command_knows():
    assert set(studies.REPORT_KINDS) <= set(report_cli.REPORTS)


def test_a_study_takes_its_run_from_another_as_a_merge_patch():
    lrn, ablations = studies.load("ablations_lrn"), studies.load("ablations")
    assert set(lrn.run.data) == {"fashion_mnist", "cifar10"}  # imagenet: null removes it
    assert lrn.run.data == {d: ablations.run.data[d] for d in ("fashion_mnist", "cifar10")}
    assert lrn.run.settings == {"model.init_std.conv1": 0.5} and lrn.run.skip == {}
    assert lrn.run.seeds == (10, 11, 12, 13, 14) != ablations.run.seeds  # its own plan
    assert (lrn.run.sweep, lrn.run.evaluate) == (ablations.run.sweep, None)
    modern = studies.load("relu_speedup_modern")
    assert modern.run.choose_rate.full_grid is False and modern.run.reports == ()
    assert modern.run.choose_rate.seeds == studies.load("relu_speedup").run.choose_rate.seeds
    assert studies.merge_patch({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": None, "e": 4}}) == {
        "a": {"c": 2, "e": 4},
        "d": 3,
    }
