"""WMDP-style multiple choice (docs/wmdp.md): lm-evaluation-harness tasks (wmdp_mini, mmlu_mini, wmdp_bio, mmlu,
...) read beside a run's own evaluation (beside TOFU's, `tofu.py`), and the table of a few models.

    python -m unlearning.benchmarks.wmdp tofu-mini/target tofu-mini/retain90      # the table of both
    python -m unlearning.benchmarks.wmdp MODEL --tasks wmdp_mini,mmlu_mini --limit 0.5
"""

from __future__ import annotations

from unlearning.benchmarks.tofu import tofu_source
from unlearning.evaluation.wmdp_eval import LmEvalEvaluator, parse_lm_eval


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
