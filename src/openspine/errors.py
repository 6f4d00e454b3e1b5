"""The exceptions openspine raises for problems a user can fix.

Every message names the offending value and, where there is one, the fix. The CLI turns any
:class:`OpenSpineError` into a one-line message and a non-zero exit code instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class OpenSpineError(Exception):
    """Base class of every error that openspine raises on purpose."""


class ScanReadError(OpenSpineError):
    """A path could not be read as a scan (missing, empty, corrupt, unknown format)."""


class ScanNotFoundError(ScanReadError, FileNotFoundError):
    """Nothing is at the path given (also a FileNotFoundError, as Python code that opens files expects, with
    ``errno`` ENOENT; its message is openspine's)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        import errno

        self.errno = errno.ENOENT


class GeometryError(ScanReadError):
    """A scan's geometry is inconsistent (mixed orientations, sizes, irregular slice gaps)."""


class UnsupportedScanError(ScanReadError):
    """A readable scan that openspine cannot analyse (a lone axial slice, 4D data, thick axial stack)."""


class ImageContentError(ScanReadError):
    """The voxel values cannot be analysed (NaN/Inf, constant image)."""


class OutOfScopeError(ScanReadError):
    """A scan that was read but holds nothing openspine analyses: a plane that is not sagittal, an image without
    contrast, a label map given as an image. :func:`openspine.analyze` does not raise it: it returns a result whose
    ``out_of_scope`` says why (``openspine analyze`` exits with status 3, batch lists the case with stage
    ``scope``). ``plane``: the plane the refusal rests on, as ``input.plane`` of result.json records it (e.g.
    ``{"value": "axial", "source": "geometry"}``), or None."""

    def __init__(self, message: str, plane: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.plane = dict(plane) if plane is not None else None


class NotSagittalError(OutOfScopeError, UnsupportedScanError):
    """An axial or coronal acquisition (a lone slice, or a thick-slice stack): no sagittal view of it is usable."""


class NoContrastError(OutOfScopeError, ImageContentError):
    """Every voxel has the same value (an all-black or all-white picture, an all-zero volume): not a spine image."""


class SeriesSelectionError(ScanReadError):
    """The requested series does not exist, or no series suits the analysis."""


class OutputError(OpenSpineError):
    """Outputs cannot be written where asked (the folder is a file, no permission)."""


class OutputInUseError(OutputError):
    """Another openspine batch run holds the output folder (the same part, or an overlapping split): nothing is
    wrong with the cases, and the same command succeeds once that run ends. ``openspine batch`` exits with status 75
    (EX_TEMPFAIL of sysexits.h: try again later), so that a job script tells it from a failed case (1)."""


class ModelError(OpenSpineError):
    """A model file is missing, corrupt or does not match its model card."""


class MissingDependencyError(OpenSpineError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


class ConfigError(OpenSpineError, ValueError):
    """An option or configuration value is not valid."""


class InputTypeError(ConfigError, TypeError):
    """An input of a type openspine does not take (a numpy array or a nibabel image where a path or a Scan is
    expected); the message says how to pass it."""


class UsageError(ConfigError):
    """A command-line option value that is not valid: ``openspine`` exits with status 2, as for any bad command
    line."""


class EngineError(OpenSpineError):
    """Another system's models asked for (``--engine spinenet``) cannot run: its package or weights are missing."""


class BatchInterrupted(KeyboardInterrupt):
    """A batch run stopped by Ctrl-C or SIGTERM (a job's time limit) before its last case. Still a
    KeyboardInterrupt, so code that catches that goes on as before; it says how far the run got: ``finished`` of
    the ``to_analyse`` cases this run took on are done, ``earlier`` cases had been finished by earlier runs. The
    cases finished are kept, and the same run started again goes on with the rest."""

    def __init__(self, finished: int, to_analyse: int, earlier: int, tables_unbuilt: bool = False) -> None:
        self.finished, self.to_analyse, self.earlier = finished, to_analyse, earlier
        self.tables_unbuilt = tables_unbuilt  # stopped while the cohort tables were being built
        super().__init__(self.progress())

    def progress(self) -> str:
        """How far the run got, in words: '3 of the 40 cases to analyse were finished, 12 more earlier'."""
        earlier = f", {self.earlier} more earlier" if self.earlier else ""
        were = "was" if self.finished == 1 else "were"
        tables = "; the cohort tables may be a mix of this run's and earlier ones" if self.tables_unbuilt else ""
        return f"{self.finished} of the {self.to_analyse} cases to analyse {were} finished{earlier}{tables}"
