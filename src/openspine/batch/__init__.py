"""The batch shell: many scans, resumable, sharded, with per-case failure isolation.

``openspine batch INPUT_ROOT --out OUT_DIR`` — see :func:`openspine.batch.runner.run_batch`.
"""
