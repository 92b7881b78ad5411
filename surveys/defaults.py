"""Surveys and complaint categories every program starts with (SPEC sections 2 and 7)."""

SURVEYS = [
    {
        "code": "nps",
        "kind": "nps",
        "name": "NPS after a purchase",
        "question_ru": "Насколько вероятно, что вы порекомендуете нас другу или коллеге?",
        "question_en": "How likely are you to recommend us to a friend?",
        "follow_up_detractor_ru": "Что нам исправить в первую очередь?",
        "follow_up_detractor_en": "What should we fix first?",
        "follow_up_passive_ru": "Чего не хватило до идеальной оценки?",
        "follow_up_passive_en": "What would make it a 10?",
        "follow_up_promoter_ru": "Что вам понравилось больше всего?",
        "follow_up_promoter_en": "What did you like most?",
    },
    {
        "code": "csat",
        "kind": "csat",
        "name": "Satisfaction with a resolved complaint",
        "question_ru": "Насколько вы довольны тем, как мы решили ваш вопрос?",
        "question_en": "How satisfied are you with how we resolved your case?",
        "delay_days": 0,
        "cooldown_days": 0,
    },
    {
        "code": "churn",
        "kind": "churn",
        "name": "Why members stop buying",
        "question_ru": "Почему вы стали реже к нам заходить?",
        "question_en": "Why have you stopped shopping with us?",
        "delay_days": 0,
        "cooldown_days": 365,
    },
]

CATEGORIES = [
    ("detractor", "Unhappy survey answer", "Недовольный ответ в опросе", 48),
    ("service", "Service in store", "Обслуживание в магазине", 48),
    ("product", "Product quality", "Качество товара", 72),
    ("points", "Points and program", "Баллы и программа", 24),
    ("delivery", "Delivery", "Доставка", 48),
    ("other", "Other", "Другое", 72),
]


def install_default_surveys(survey_model, category_model):
    """Create the default surveys and categories that do not exist yet (safe to run again)."""
    for fields in SURVEYS:
        survey_model.objects.get_or_create(code=fields["code"], defaults=fields)
    for code, name, name_ru, hours in CATEGORIES:
        category_model.objects.get_or_create(
            code=code, defaults={"name": name, "name_ru": name_ru, "sla_hours": hours}
        )
