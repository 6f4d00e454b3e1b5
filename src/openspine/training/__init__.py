"""The learning side's base layer: data sets, metrics, networks and their training loops.

Needs the ``train`` extra for the networks (``pip install 'openspine[train]'``); torch is imported only inside the
functions and modules that need it, never by importing this package.

* :mod:`openspine.training.datasets` – SPIDER cases, the detection cache and disc samples, the detector's volumes.
* :mod:`openspine.training.metrics` – agreement and calibration metrics: the one scoring rule.
* :mod:`openspine.training.grader_network` – the grader network and its training loop (PyTorch).
* :mod:`openspine.training.stacking` – the grader's stacker over out-of-fold logits and disc features.
* :mod:`openspine.training.grader` – ``openspine train grader`` (:func:`~openspine.training.grader.train_grader`).
* :mod:`openspine.training.detector` – ``openspine train detector``.
* :mod:`openspine.training.recognizer` – ``openspine train recognizer``.

Layers (imports go one way): the inference package ← ``training`` ← ``evaluation`` and ``finetune`` (which do not
import each other) ← :mod:`openspine.train_grader_cli` (train, then evaluate). Nothing here imports
:mod:`openspine.evaluation` or :mod:`openspine.finetune`, and no inference module imports the learning side
(``tests/training/test_learning_layers.py``).
"""
