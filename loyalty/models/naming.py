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


def name_sql(alias, language):
    """The same rule in SQL, for statements that write many rows at once: ``alias`` is the
    named row's table alias, ``language`` an SQL expression holding the reader's language."""
    return (
        f"CASE WHEN substr({language}, 1, 2) = 'ru' AND {alias}.name_ru <> '' "
        f"THEN {alias}.name_ru ELSE {alias}.name END"
    )
