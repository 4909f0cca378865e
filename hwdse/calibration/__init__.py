"""Calibration: fit catalog parameters to measured data and score them on held-out rows.

The layer above the product (formats, workload, hardware, perf, serving, search, report): it reads
``$HWDSE_VALIDATION_DIR`` (default ``../shared/validation``) and the repository's ``validation/``
files, fits the parameters that ``arch/`` and ``validation/serving_fit.yaml`` carry, and writes the
reports under ``validation/``. Nothing below this package imports it.

* :mod:`~hwdse.calibration.data` — measured kernel tables and serving rows, loaded and checked.
* :mod:`~hwdse.calibration.kernels` — the GPU kernel fit (``efficiency:`` blocks) and its held-out error.
* :mod:`~hwdse.calibration.end_to_end` — whole-model checks (TensorRT-LLM rows, GPT-3 layers).
* :mod:`~hwdse.calibration.spatial` — spatial chips' decode efficiencies.
* :mod:`~hwdse.calibration.power` — GPU board power while serving.
* :mod:`~hwdse.calibration.campaigns`, :mod:`~hwdse.calibration.serving`, :mod:`~hwdse.calibration.serving_fit`,
  :mod:`~hwdse.calibration.moe` — measured serving runs: their records and scopes, predictions, the engine
  and client-term fit, MoE rows.
* :mod:`~hwdse.calibration.report`, :mod:`~hwdse.calibration.serving_report` — the validation reports.
"""
