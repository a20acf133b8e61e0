"""Ray trainables of unlearn-sweep: the per-worker loop and the Tune trial function that launches it.

    from trainables.trial import run_trial                 # the Tune function trainable
    from trainables.worker_loop import unlearning_loop_per_worker
"""
