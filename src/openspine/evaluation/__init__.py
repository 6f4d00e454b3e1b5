"""Evaluation of openspine's models on the shared development data set.

* :mod:`openspine.evaluation.detection` – vertebra detection and labelling (``openspine evaluate detection``).
* :mod:`openspine.evaluation.grading` – disc grading (``openspine evaluate grading``).
* :mod:`openspine.evaluation.recognition` – picture recognition (``openspine evaluate recognition``).

Each command is a typed function (``evaluate``, ``evaluate_recognition``) with an argparse wrapper (``cli_main``).
Evaluation reads its data sets and metrics from :mod:`openspine.training` and never imports
:mod:`openspine.finetune`.

Report figures on the ``val`` split only; the models were trained on ``train``.
"""
