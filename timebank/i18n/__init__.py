"""Problems in the caller's language: Accept-Language negotiation and the Chinese message catalog."""

from timebank.i18n.language import CONTENT_LANGUAGE, Language, negotiate
from timebank.i18n.problems import localize_problem

__all__ = ["CONTENT_LANGUAGE", "Language", "localize_problem", "negotiate"]
