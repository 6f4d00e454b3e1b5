"""Evaluation of openspine's models on the shared development data set.

* :mod:`openspine.evaluation.detection` – vertebra detection and labelling (``openspine evaluate detection``).
* :mod:`openspine.evaluation.grading` – disc grading (``openspine evaluate grading``).

Report figures on the ``val`` split only; the models were trained on ``train``.
"""
