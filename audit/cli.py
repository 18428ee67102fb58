"""The `audit` command line. The only place that turns errors into exit codes.

Exit codes: 0 every blocking gate passed; 1 a gate failed (or a probe errored); 2 bad input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from audit.errors import AuditError
from audit.runner import CheckRequest

EXIT = {"pass": 0, "fail": 1, "error": 1}


class BadInput(click.ClickException):
    exit_code = 2


def log(msg: str) -> None:
    click.echo(f"audit: {msg}", err=True)


def guarded(fn):
    """Run ``fn``; user-fixable errors become one line on stderr and exit code 2."""
    try:
        return fn()
    except AuditError as exc:
        raise BadInput(exc.message) from None


def parse_csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


def parse_pairs(items, option: str, form: str) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in items if p.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise BadInput(f"{option}: expected {form}")
    return {k.strip(): v.strip() for k, v in pairs}


def parse_label_map(value: str | None) -> dict[str, str] | None:
    return parse_pairs(value.split(","), "--label-map", "MODEL_LABEL=SUITE_LABEL pairs separated by commas") \
        if value else None


def engine_options(fn):
    """Options shared by every command that scores text."""
    for opt in reversed([
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="Where the engine runs; auto picks CUDA when torch sees a GPU."),
        click.option("--batch-size", type=click.IntRange(1),
                     help="Most sequences per batch [default: 64 on CPU, 256 on CUDA]."),
        click.option("--batch-tokens", type=click.IntRange(16),
                     help="Most padded tokens per batch; batches are cut by length [default: 4096 CPU, 65536 CUDA]."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
                     show_default=True, help="Folder for the reports (html, md, json, junit.xml, sarif)."),
    ]):
        fn = opt(fn)
    return fn


def finish(report: dict, out: Path) -> None:
    """Print the verdict and gate lines, then exit with the verdict's code."""
    for g in report["gates"]:
        click.echo(f"  [{g['status'].upper():7}] {g['name']}: {g['message']}")
    for name, p in report["probes"].items():
        if p["status"] == "error":
            click.echo(f"  [ERROR  ] probe {name}: {p['error']}")
    click.echo(f"verdict: {report['verdict'].upper()}  (reports in {out}: report.html, report.md, report.json, "
               "junit.xml, report.sarif)")
    sys.exit(EXIT[report["verdict"]])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="audit")
def main():
    """Audit a (compressed) text classifier against the benchmark it claims: contamination,
    calibration, robustness and regressions against its baseline, with a pass/fail verdict."""


@main.command()
@click.argument("model")
@click.option("--benchmark", "-b", required=True, help="Built-in suite name (see `audit suites`) or a suite YAML path.")
@click.option("--baseline", help="The uncompressed model to compare against (directory or hub id).")
@click.option("--train-data", multiple=True, type=click.Path(path_type=Path),
              help="Training corpus file(s) for the contamination and long-tail probes; repeatable.")
@click.option("--probes", help="Comma-separated probes to run instead of the suite's list.")
@click.option("--shift-set", multiple=True, metavar="NAME=PATH",
              help="Extra shift set for the shift probe: a file with text and label columns; repeatable.")
@engine_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every random choice.")
@click.option("--limit", type=click.IntRange(1), help="Score a seeded sample of this many eval examples.")
@click.option("--label-map", help="MODEL_LABEL=SUITE_LABEL,... when label names differ.")
@click.option("--strict", is_flag=True, help="Re-raise a probe's exception instead of reporting it as ERROR.")
@click.option("--allow-unsafe", is_flag=True, help="Allow pickle checkpoints and trust_remote_code models.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the on-disk prediction cache.")
def check(model, benchmark, baseline, train_data, probes, shift_set, device, batch_size, batch_tokens, out, seed, limit,
          label_map, strict, allow_unsafe, no_cache):
    """Audit MODEL on a benchmark suite and write a report; exit 0 pass, 1 fail, 2 bad input."""
    from audit.engine import EngineConfig
    from audit.runner import check as run_check

    req = CheckRequest(model=model, benchmark=benchmark, baseline=baseline, train_data=train_data,
                       probes=parse_csv(probes), out=out, seed=seed, limit=limit, strict=strict,
                       allow_unsafe=allow_unsafe, label_map=parse_label_map(label_map), use_cache=not no_cache,
                       shift_sets=parse_pairs(shift_set, "--shift-set", "NAME=PATH"),
                       engine=EngineConfig(device=device, batch_size=batch_size, batch_tokens=batch_tokens))
    finish(guarded(lambda: run_check(req, log)), out)


@main.command()
@click.option("--benchmark", "-b", required=True, help="Built-in suite name (see `audit suites`) or a suite YAML path.")
@click.option("--train-data", multiple=True,
              help="Corpus file, folder, glob or hf: id (.txt one document per line, .jsonl, .csv, .tsv, .parquet, "
                   ".gz); repeatable. The suite's own training split is always scanned too.")
@click.option("--text-field", help="Field or column holding the text in jsonl/csv/tsv/parquet corpora [default: text].")
@click.option("--threshold", type=click.FloatRange(0, 1), help="Jaccard at or above which an item counts as contaminated [suite, else 0.8].")
@click.option("--containment-threshold", type=click.FloatRange(0, 1),
              help="Share of an item's shingles found in one document that counts as contaminated [suite, else 0.8].")
@click.option("--shingle-size", type=click.IntRange(1), help="Words per shingle [suite, else 5].")
@click.option("--num-perm", type=click.IntRange(16), help="MinHash permutations [suite, else 128].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"), show_default=True,
              help="Folder for the reports (html, md, json, junit.xml, sarif).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for MinHash and --limit sampling.")
@click.option("--limit", type=click.IntRange(1), help="Scan a seeded sample of this many eval examples.")
def contamination(benchmark, train_data, text_field, threshold, containment_threshold, shingle_size, num_perm, out,
                  seed, limit):
    """Search a benchmark's eval split in training corpora (no model needed); exit 1 if a gate fails."""
    from audit.runner import contamination as run_contamination

    params = {k: v for k, v in {"jaccard_threshold": threshold, "containment_threshold": containment_threshold,
                                "shingle_size": shingle_size, "num_perm": num_perm, "text_field": text_field}.items()
              if v is not None}
    req = CheckRequest(model="", benchmark=benchmark, train_data=train_data, out=out, seed=seed, limit=limit,
                       command="contamination", params=params)
    finish(guarded(lambda: run_contamination(req, log)), out)


@main.command()
def suites():
    """List the built-in benchmark suites."""
    from audit import suite as suite_mod

    def show():
        for name, path in suite_mod.builtin_suites().items():
            s = suite_mod.load(str(path))
            click.echo(f"{name:12} {s.description}  [{', '.join(s.probes)}]")

    guarded(show)


@main.command()
@click.argument("suite_file", type=click.Path(path_type=Path))
def validate(suite_file):
    """Validate a suite YAML (keys, data files, probes, gates) without loading any model."""
    from audit import suite as suite_mod

    s = guarded(lambda: suite_mod.load(str(suite_file)))
    click.echo(f"{suite_file}: ok ({s.name}: {len(s.labels)} labels, {len(s.probes)} probes, {len(s.gates)} gates, "
               f"{len(s.shift_sets)} shift sets)")


@main.command()
@click.argument("model")
@click.option("--method", required=True, help="int8 | fp16 | bf16 | prune:FRACTION (e.g. prune:0.5).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--allow-unsafe", is_flag=True, help="Allow pickle checkpoints and trust_remote_code models.")
def compress(model, method, out, overwrite, allow_unsafe):
    """Write a compressed variant of MODEL that `audit check` can load back."""
    from audit.compress import compress as run_compress, parse_method
    from audit.models import load_model

    def run():
        parse_method(method)  # reject a bad method before loading the model
        return run_compress(load_model(model, allow_unsafe=allow_unsafe), method, out, overwrite)

    recipe = guarded(run)
    extra = f", sparsity {recipe['measured_sparsity']:.3f}" if "measured_sparsity" in recipe else ""
    click.echo(f"wrote {out} ({recipe['method']}{extra})")


@main.command()
@engine_options
def demo(device, batch_size, batch_tokens, out):
    """Fine-tune the packaged MiniLM on SST-2, compress it to int8, and audit int8 vs fp32 on sst2."""
    from audit.demo import BENCHMARK, demo_models
    from audit.engine import EngineConfig
    from audit.runner import check as run_check

    def run():
        baseline, int8 = demo_models(log)
        req = CheckRequest(model=str(int8), baseline=str(baseline), benchmark=BENCHMARK, out=out,
                           engine=EngineConfig(device=device, batch_size=batch_size, batch_tokens=batch_tokens))
        return run_check(req, log)

    finish(guarded(run), out)


@main.command()
@click.argument("report", type=click.Path(path_type=Path))
@click.option("--claims", type=click.Path(path_type=Path),
              help="YAML list of claimed numbers to check against REPORT's measurements (no re-run).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/verify"),
              show_default=True, help="Folder for the re-run's report.")
@click.option("--use-cache", is_flag=True, help="Let the re-run read cached predictions (default: score afresh).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def verify(report, claims, out, use_cache, as_json):
    """Re-run the audit recorded in REPORT's manifest and say whether the verdict and every metric reproduce
    (within the CI for sampled metrics); with --claims, check a paper's numbers against REPORT instead.
    Exit 0 reproduced / all claims supported, 1 otherwise, 2 bad input."""
    from audit import verify as verify_mod
    from audit.runner import CheckRequest, check as run_check, contamination as run_contamination

    original = guarded(lambda: verify_mod.load_report(report))
    if claims:
        results = verify_mod.check_claims(original, guarded(lambda: verify_mod.load_claims(claims)))
        if as_json:
            click.echo(json.dumps(results, indent=2))
        else:
            for r in results:
                click.echo(f"  [{r['status'].upper():12}] {r['claim']}: {r['reason']}")
            click.echo(f"claims: {sum(r['status'] == 'supported' for r in results)}/{len(results)} supported")
        sys.exit(0 if all(r["status"] == "supported" for r in results) else 1)

    request = original["manifest"]["request"]
    changes = verify_mod.input_changes(original["manifest"])
    for c in changes:
        log(f"input changed since the original run: {c['path']} ({c['change']})")
    req = guarded(lambda: CheckRequest.from_dict({**request, "use_cache": use_cache}, out))
    rerun = run_contamination if request["command"] == "contamination" else run_check
    new = guarded(lambda: rerun(req, log))
    result = verify_mod.summarize(original, new, changes)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for row in result["metrics"]:
            if row["status"] != "reproduced":
                click.echo(f"  [{row['status']}] {row['probe']}.{row['metric']} ({row['role']}): "
                           f"{row['original']} -> {row['new']}")
        counts = ", ".join(f"{n} {s}" for s, n in result["counts"].items())
        click.echo(f"verdict {result['verdict']['original']} -> {result['verdict']['new']}; metrics: {counts}")
    click.echo(f"reproduced: {'yes' if result['reproduced'] else 'no'}  (re-run report: {out / 'report.json'})")
    sys.exit(0 if result["reproduced"] else 1)


@main.command()
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.option("--tolerance", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Ignore metric changes no larger than this.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 if any gate's status got worse.")
def diff(old, new, as_json, tolerance, fail_on_regression):
    """What changed between two reports: verdict, gate statuses and metric deltas (for ratcheting in CI)."""
    from audit import diff as diff_mod
    from audit.verify import load_report

    d = diff_mod.diff(guarded(lambda: load_report(old)), guarded(lambda: load_report(new)), tolerance)
    click.echo(json.dumps(d, indent=2) if as_json else diff_mod.render(d))
    sys.exit(1 if fail_on_regression and d["worse"] else 0)
