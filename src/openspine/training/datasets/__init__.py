"""The data sets of the learning side (numpy / scipy; no torch).

* :mod:`.spider` – the SPIDER cases of the shared data folder and their radiologists' gradings.
* :mod:`.discs` – disc samples for graders, located by the built-in detector, with the detection cache.
* :mod:`.volumes` – the detector's training volumes, targets and augmentation.
* :mod:`.pictures` – the recogniser's training pictures and their 2D cuts.
"""
