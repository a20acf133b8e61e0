"""WMDP-style multiple choice (docs/wmdp.md): lm-evaluation-harness tasks (wmdp_mini, mmlu_mini, wmdp_bio, mmlu,
...) read beside a run's own evaluation (an add-on benchmark: `registry.addon_blocks`), and the table of a few models.

    python -m unlearning.benchmarks.wmdp tofu-mini/target tofu-mini/retain90      # the table of both
    python -m unlearning.benchmarks.wmdp MODEL --tasks wmdp_mini,mmlu_mini --limit 0.5
"""

from __future__ import annotations

from typing import Any

from unlearning.benchmarks.tofu import tofu_source
from unlearning.errors import ConfigError
from unlearning.evaluation.wmdp_eval import (SETTINGS_KEY, LmEvalConfig, LmEvalEvaluator, metric_names, parse_lm_eval,
                                             uses_wmdp_mini)


class WmdpBenchmark:
    """WMDP-style multiple choice through lm-evaluation-harness: an add-on read beside a training benchmark's own
    evaluation (the `lm_eval:` block of `eval.settings`; wmdp-mini is derived from the run's tofu-mini data)."""

    name, title, mini, trains = "wmdp", "WMDP", "wmdp-mini", False
    settings_key = SETTINGS_KEY  # its block inside another benchmark's eval.settings
    eval_settings = LmEvalConfig
    metric_aliases: dict[str, tuple[str, str]] = {}
    default_objectives = ({"name": "wmdp_mini_acc", "mode": "min"}, {"name": "mmlu_mini_acc", "mode": "max"})

    def parse(self, block: Any, where: str) -> LmEvalConfig:
        """The validated block (one-line ConfigError naming `lm_eval.<field>`)."""
        return parse_lm_eval(block, where)

    def addon(self, cfg: LmEvalConfig, tokenizer: Any, source: Any, forget_split: str) -> LmEvalEvaluator:
        """Its evaluator beside the run's own: `.evaluate(model)` -> {<task>_<metric>: value}."""
        return LmEvalEvaluator(cfg, tokenizer, source, forget_split)

    def addon_metrics(self, spec: Any, cfg: LmEvalConfig) -> tuple[str, ...]:
        """The metrics the block reports, for a spec's objectives (wmdp-mini needs tofu-mini data); paths made
        absolute in the spec (trials run in other working directories)."""
        if uses_wmdp_mini(cfg) and not spec.data.source.startswith("tofu-mini"):
            raise ConfigError("spec", field="lm_eval.tasks", value=cfg.tasks,
                              fix="wmdp-mini is derived from tofu-mini: use data.source tofu-mini, or name other "
                                  "tasks (wmdp_bio, wmdp_cyber, mmlu)")
        if cfg.include_path or cfg.data_files:
            spec.eval.settings[SETTINGS_KEY] = cfg.model_dump(exclude_defaults=True)
        return metric_names(cfg, where="spec")


WMDP = WmdpBenchmark()


def main() -> None:
    import argparse

    from unlearning.models.loading import load_bundle

    ap = argparse.ArgumentParser(description="WMDP / MMLU accuracy of models through lm-evaluation-harness.")
    ap.add_argument("models", nargs="+", help="zoo names or model folders")
    ap.add_argument("--tasks", default="wmdp_mini,mmlu_mini")
    ap.add_argument("--forget-split", default="forget10")
    ap.add_argument("--source", default="tofu-mini", help="tofu-mini (the zoo's data) or a tofu-mini data folder")
    ap.add_argument("--limit", type=float, default=None)
    args = ap.parse_args()
    limit = None if args.limit is None else (int(args.limit) if args.limit >= 1 else args.limit)
    cfg = parse_lm_eval({"tasks": args.tasks.split(","), "limit": limit})
    rows = []
    for name in args.models:
        bundle = load_bundle(name)
        ev = LmEvalEvaluator(cfg, bundle.tokenizer, tofu_source(args.source, name), args.forget_split)
        rows.append((name, ev.evaluate(bundle.model)))
    keys = list(dict.fromkeys(k for _, m in rows for k in m))
    print("model".ljust(24) + "".join(k.rjust(22) for k in keys))
    for name, m in rows:
        print(name.ljust(24) + "".join(f"{m.get(k, float('nan')):22.3f}" for k in keys))


if __name__ == "__main__":
    main()
