"""Helpers shared by lab's notebooks: where results live, how to call `lab`, how to read its files.

The notebooks read what lab wrote (runs.parquet, curves.parquet, evals.parquet, fit.json,
emergence.json, compare.json, krajewski.json) and call the `lab` binary for anything lab computes
(fits, predictions, comparisons); nothing here re-implements a fit.

Environment:
    LAB_RESULTS  results root holding one folder per sweep (default: <repo>/results)
    LAB_BIN      the lab binary (default: `lab` on PATH, else <repo>/target/{release,debug}/lab)
    LAB_SHARED   folder of published scaling tables (default: <repo>/../shared/data/public-scaling-runs)
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl

REPO = Path(__file__).resolve().parent.parent

#: The fit approaches in the order lab reports them, with the labels the figures use.
APPROACHES = {
    "approach1": "approach 1 (envelope)",
    "approach2": "approach 2 (isoFLOP)",
    "approach3": "approach 3 (L(N, D))",
    "kaplan": "Kaplan",
}


class LabFailed(RuntimeError):
    """`lab` exited non-zero; the message holds its command line and error output."""


def results_root() -> Path:
    """The folder holding one results folder per sweep (LAB_RESULTS, default <repo>/results)."""
    return Path(os.environ.get("LAB_RESULTS", REPO / "results")).resolve()


def results(name: str) -> Path:
    """The results folder of sweep `name`, or an error saying how to produce it."""
    folder = results_root() / name
    if not (folder / "runs.parquet").is_file():
        raise FileNotFoundError(
            f"{folder / 'runs.parquet'} does not exist: train the sweep first with "
            f"`lab sweep sweeps/{name}.yaml`, or point LAB_RESULTS at a folder holding {name}/"
        )
    return folder


def available(names: list[str]) -> list[Path]:
    """The results folders of `names` that exist (each missing one is reported, not fatal)."""
    found = []
    for name in names:
        try:
            found.append(results(name))
        except FileNotFoundError as why:
            print(f"skipping {name}: {why}")
    if not found:
        raise FileNotFoundError(f"none of {names} has results under {results_root()}")
    return found


def published(table: str) -> Path | None:
    """A published scaling table of the shared data folder (LAB_SHARED, default
    <repo>/../shared/data/public-scaling-runs), or None with a message when it is absent."""
    root = Path(os.environ.get("LAB_SHARED", REPO.parent / "shared/data/public-scaling-runs"))
    path = root / table
    if not path.is_file():
        print(f"skipped: {path} not found (set LAB_SHARED to the folder of published tables)")
        return None
    return path


def lab_binary() -> str:
    """Path of the lab binary: LAB_BIN, `lab` on PATH, or the repository's build."""
    if os.environ.get("LAB_BIN"):
        return os.environ["LAB_BIN"]
    on_path = shutil.which("lab")
    if on_path:
        return on_path
    for profile in ("release", "debug"):
        built = REPO / "target" / profile / "lab"
        if built.is_file():
            return str(built)
    raise FileNotFoundError(
        "no lab binary: build it with `cargo build --release` in the repository, "
        "put it on PATH, or set LAB_BIN"
    )


def lab(*args: object, echo: bool = True) -> str:
    """Runs `lab ARGS...` from the repository root and returns its standard output.

    Prints the command (and lab's output when `echo`); raises LabFailed with lab's error message
    when it exits non-zero.
    """
    argv = [str(a) for a in args]
    print("$ lab " + " ".join(shlex.quote(a) for a in argv))
    done = subprocess.run(
        [lab_binary(), *argv], cwd=REPO, capture_output=True, text=True, check=False
    )
    if echo and done.stdout.strip():
        print(done.stdout.rstrip())
    if done.returncode != 0:
        raise LabFailed(
            f"lab {' '.join(argv)} exited with {done.returncode}:\n{done.stderr.strip()}"
        )
    return done.stdout


def read_json(path: Path) -> dict:
    """A JSON file lab wrote (NaN is written as null)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def runs(folder: Path, done_only: bool = True) -> pl.DataFrame:
    """runs.parquet of a results folder (by default only runs that finished)."""
    frame = pl.read_parquet(folder / "runs.parquet")
    return frame.filter(pl.col("status") == "done") if done_only else frame


def curves(folder: Path) -> pl.DataFrame:
    """curves.parquet of a results folder joined with each run's shape and budget."""
    keys = ["id", "params_nonembedding", "isoflop_budget", "n_layer", "d_model"]
    return pl.read_parquet(folder / "curves.parquet").join(
        runs(folder).select(keys), on="id", how="inner"
    )


def fit(folder: Path) -> dict:
    """fit/fit.json of a results folder (written by `lab sweep`), or, when there is none, fitted
    now with E held at the corpus's entropy floor in every law (when the runs recorded one)."""
    path = folder / "fit" / "fit.json"
    if not path.is_file():
        floor = runs(folder)["entropy_floor"].drop_nulls()
        lab("fit", folder, *(["--fix-e", "floor"] if floor.len() else []), echo=False)
    return read_json(path)


def same_options(fit_file: dict, unless: tuple[str, ...] = ()) -> list[str]:
    """`lab fit` options that reproduce the data selection and settings of an earlier fit,
    leaving out the flags named in `unless` (which the caller sets itself)."""
    spec, opts = fit_file["input"]["spec"], fit_file["options"]
    pairs = [
        ("--n-kind", spec["n_kind"]),
        ("--c-kind", spec["c_kind"]),
        ("--drop-highest", spec["drop_highest"]),
        ("--bootstrap", opts["bootstrap"]),
        ("--seed", opts["seed"]),
        ("--level", opts["level"]),
        ("--holdout", opts["holdout_budgets"]),
        ("--budget-ratio", opts["approach2"]["budget_ratio"]),
        ("--window", opts["approach2"]["window_decades"]),
        ("--huber-delta", opts["approach3"]["huber_delta"]),
        ("--fix-e", opts["approach3"].get("fixed_e")),
    ]
    pairs += [(f"--{key}", spec.get(key)) for key in ("n", "d", "c", "loss")]
    pairs += [("--filter", f) for f in spec["filters"]]
    args = []
    for flag, value in pairs:
        if value is not None and flag not in unless:
            args += [flag, str(value)]
    return args


def refit(folder: Path, like: dict, *options: object, out: Path) -> dict:
    """Runs `lab fit` on `folder` with the settings of the earlier fit `like` plus `options`
    (for example --predict), into `out`, and returns the new fit.json."""
    options = tuple(str(o) for o in options)
    lab("fit", folder, *same_options(like, unless=options), *options, "--out", out, echo=False)
    return read_json(out / "fit.json")


def fit_groups(folder: Path, like: dict, column: str, *options: object) -> dict[str, Path]:
    """`lab fit --group-by column` with the settings of `like` plus `options`: one fit per value
    of the column, in <folder>/fit/groups/<column>-<value>/. Returns {group name: its folder}."""
    options = ("--group-by", column, *(str(o) for o in options))
    out = folder / "fit"
    lab("fit", folder, *same_options(like, unless=options), *options, "--out", out, echo=False)
    groups = sorted((out / "groups").glob(f"{column}-*/fit.json"))
    return {g.parent.name: g.parent for g in groups}


def compare(
    baseline: Path, *variants: Path, out: Path, approach: str | None = None, echo: bool = True
) -> dict:
    """`lab plot --compare`: the variants' frontiers against the baseline's, with lab's compute
    multipliers (lab picks the approach unless given). Returns compare.json (the figure is
    <out>/compare.png)."""
    chosen = ("--approach", approach) if approach else ()
    lab(
        "plot",
        "--compare",
        baseline,
        *variants,
        *chosen,
        "--format",
        "png",
        "--out",
        out,
        echo=echo,
    )
    return read_json(out / "compare.json")


def multiplier_table(cmp: dict) -> pl.DataFrame:
    """compare.json as a table: each variant's exponent a and compute multiplier (1 for the
    baseline, null where the baseline's loss lies outside the variant's frontier)."""
    return pl.DataFrame(
        [
            {
                "variant": v["name"],
                "a (N_opt ~ C^a)": interval(v["a"], 2),
                "multiplier": v["multiplier"],
                "exponents plausible": v["plausible"],
            }
            for v in cmp["variants"]
        ],
        schema={
            "variant": pl.String,
            "a (N_opt ~ C^a)": pl.String,
            "multiplier": pl.Float64,
            "exponents plausible": pl.Boolean,
        },
    )


def multipliers_by_approach(baseline: Path, *variants: Path, out: Path) -> pl.DataFrame:
    """The compute multipliers of every approach fitted on all inputs (one `lab plot --compare
    --approach A` each, into <out>/<approach>/), as one table: how much the answer depends on the
    fitting approach. Approaches lab cannot compare are reported and left out."""
    tables = []
    for approach in ("1", "2", "3"):
        try:
            cmp = compare(
                baseline, *variants, out=out / f"approach{approach}", approach=approach, echo=False
            )
        except LabFailed as why:
            print(f"approach {approach}: {str(why).splitlines()[-1]}")
            continue
        tables.append(
            multiplier_table(cmp)
            .slice(1)
            .with_columns(approach=pl.lit(cmp["approach"]), at_c=pl.lit(number(cmp["at_c"])))
        )
    if not tables:
        return multiplier_table({"variants": []}).with_columns(
            approach=pl.lit(None, pl.String), at_c=pl.lit(None, pl.String)
        )
    return pl.concat(tables).select("approach", pl.exclude("approach"))


def report(fit_file: dict, approach: str) -> dict | None:
    """The report of `approach` in a fit.json, when that approach was fitted with a frontier."""
    for r in fit_file["reports"]:
        if r["approach"] == approach and r["frontier"]:
            return r
    return None


def failed(fit_file: dict) -> dict[str, str]:
    """Approaches lab could not fit, with lab's reason."""
    return {approach: reason for approach, reason in fit_file.get("failed", [])}


def number(x: float | None, digits: int = 3) -> str:
    """A number for tables: 3 significant digits, scientific when large or small."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def interval(e: dict | None, digits: int = 3) -> str:
    """An estimate of lab's JSON ({value, lo, hi}) as 'value [lo, hi]'."""
    if e is None:
        return "-"
    if e.get("lo") is None or e.get("hi") is None:
        return number(e["value"], digits)
    return f"{number(e['value'], digits)} [{number(e['lo'], digits)}, {number(e['hi'], digits)}]"


def frontier(r: dict, quantity: str) -> pl.DataFrame:
    """One quantity of an approach's frontier (n_opt, d_opt, tokens_per_param, loss) against C,
    with its interval: columns c, value, lo, hi."""
    return pl.DataFrame(
        {
            "c": [p["c"] for p in r["frontier"]],
            "value": [p[quantity]["value"] for p in r["frontier"]],
            "lo": [p[quantity]["lo"] for p in r["frontier"]],
            "hi": [p[quantity]["hi"] for p in r["frontier"]],
        },
        schema={"c": pl.Float64, "value": pl.Float64, "lo": pl.Float64, "hi": pl.Float64},
    )


def band(ax: plt.Axes, r: dict, quantity: str, label: str, color: str | None = None) -> None:
    """Draws an approach's frontier of `quantity` with its bootstrap band on log-log axes."""
    f = frontier(r, quantity)
    (line,) = ax.plot(f["c"], f["value"], label=label, color=color)
    bounded = f.drop_nulls()
    if bounded.height:
        ax.fill_between(
            bounded["c"], bounded["lo"], bounded["hi"], color=line.get_color(), alpha=0.15, lw=0
        )
    ax.set_xscale("log")
    ax.set_yscale("log")


def predictions(fit_file: dict, at: list[float] | None = None) -> pl.DataFrame:
    """Every approach's predictions of a fit.json (those within 1% of a budget in `at`, when
    given) as one table of 'value [lo, hi]' strings."""
    rows = []
    for r in fit_file["reports"]:
        for p in r["predictions"]:
            if at is not None and not any(abs(p["c"] / c - 1) < 0.01 for c in at):
                continue
            rows.append(
                {
                    "approach": r["approach"],
                    "C (FLOPs)": number(p["c"]),
                    "N_opt": interval(p["n_opt"]),
                    "D_opt": interval(p["d_opt"]),
                    "D/N": interval(p["tokens_per_param"]),
                    "loss": interval(p["loss"]),
                }
            )
    return pl.DataFrame(rows)


def parameters(fit_file: dict) -> pl.DataFrame:
    """Every fitted parameter of every approach, with its interval."""
    rows = [
        {"approach": r["approach"], "parameter": k, "estimate": interval(v)}
        for r in fit_file["reports"]
        for k, v in r["parameters"].items()
    ]
    return pl.DataFrame(rows)


def sigmoid(s: dict, x: float) -> float:
    """lab's emergence sigmoid (fit::emergence::Sigmoid::at) at x."""
    return s["floor"] + (s["top"] - s["floor"]) / (1.0 + math.exp(-(x - s["x0"]) / s["width"]))
