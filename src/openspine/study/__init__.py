"""Several series of one study read together: matching their structures (:mod:`openspine.study.match`)."""

from .match import DEFAULT_TOLERANCE_MM, MISMATCH_FLAG, MatchedDisc, MatchedVertebra, SeriesMatch, match_series

__all__ = ["DEFAULT_TOLERANCE_MM", "MISMATCH_FLAG", "MatchedDisc", "MatchedVertebra", "SeriesMatch", "match_series"]
