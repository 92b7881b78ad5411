"""Things the merchant names (tiers, surveys, complaint categories, plans): a name per language."""

from django.utils import translation


class NamedPerLanguage:
    """A model with ``name`` (English) and ``name_ru``, shown in the page's language.

    The one rule for every merchant-named row: the Russian name on a Russian page when there is
    one, else the English name. Each model's ``__str__`` returns it, so forms' choices and
    templates follow it too.
    """

    def display_name(self, language=None):
        language = language or translation.get_language() or ""
        if language.startswith("ru") and self.name_ru:
            return self.name_ru
        return self.name
