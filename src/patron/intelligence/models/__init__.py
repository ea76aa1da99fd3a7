"""Customer-base models operating on numpy arrays (no Django)."""

from patron.intelligence.models.btyd import BetaGeo, GammaGamma, Summary, rfm_summary

__all__ = ["BetaGeo", "GammaGamma", "Summary", "rfm_summary"]
