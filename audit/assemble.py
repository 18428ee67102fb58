"""The one place a report is assembled: verdict, summary, benchmark, models, probes, gates, manifest.

Report writers (audit/report/) read only what this returns.
"""

from __future__ import annotations

from dataclasses import asdict

from audit import gates as gates_mod, manifest, tradeoff

SCHEMA_VERSION = "2.3"


def report(*, req, plan, ctx, sections: dict, gates: list[dict], chance: float | None = None,
           truncation: dict | None = None) -> dict:
    suite, engine = plan.suite, plan.engine
    verdict, why = gates_mod.verdict(gates, sections, suite.inconclusive_fails)
    scorers = {"model": ctx.model, "baseline": ctx.baseline}
    specs = [suite.eval, *([suite.reference] if suite.reference else []), *suite.shift_sets.values()]
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": verdict,
        "summary": {"verdict_reason": why,
                    "tradeoff": tradeoff.line(sections, ctx.model.describe() if ctx.model else None,
                                              ctx.baseline.describe() if ctx.baseline else None),
                    "findings": gates_mod.findings(gates, truncation),
                    "inconclusive": "fail" if suite.inconclusive_fails else "warn",
                    "sampled": {name: s["details"]["sampled"] for name, s in sections.items()
                                if s.get("details", {}).get("sampled")}},
        "benchmark": {"name": suite.name, "suite": str(suite.path), "task": suite.task.kind,
                      "labels": list(suite.labels), "source": suite.source,
                      "n_eval": len(plan.eval), "n_eval_total": len(plan.eval_full), "chance_accuracy": chance,
                      "truncation": truncation,
                      "sampled_rows": plan.eval.rows.tolist() if len(plan.eval) < len(plan.eval_full) else None},
        "model": ctx.model.describe() if ctx.model else None,
        "baseline": ctx.baseline.describe() if ctx.baseline else None,
        "probes": sections,
        "gates": gates,
        "engine_stats": engine.stats.as_dict() if engine else None,
        "manifest": manifest.build(argv=req.argv, request=req.as_dict(), seed=req.seed,
                                   device=engine.device if engine else None, suite=suite,
                                   data_paths=[s.path for s in specs] + plan.train_files,
                                   models={role: manifest.model_entry(s.model) for role, s in scorers.items() if s},
                                   engine_config={**asdict(engine.config), "batching": engine.batching()} if engine
                                   else None),
    }
