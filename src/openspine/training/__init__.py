"""Training of openspine's networks (needs the ``train`` extra: ``pip install 'openspine[train]'``).

* :mod:`openspine.training.detector` – the vertebra detection and labelling network (``openspine train detector``).
* :mod:`openspine.training.data` – the detector's training volumes, targets and augmentation (numpy / scipy).

Nothing here is imported by the inference code; torch is imported only inside the functions that need it.
"""
