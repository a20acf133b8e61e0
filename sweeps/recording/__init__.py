"""Recording a sweep's results: the results file and MLflow, written by the driver only.

`results` (points.jsonl: every evaluated point and trial status), `recorder` (the Tune callback writing both),
`tracking` with `tracking_store` (MLflow that never stops training), `sync` (`unlearn-sweep sync`), `progress`
(the live view of trials). Above spec only: selection, search and operations read what it records.
"""
