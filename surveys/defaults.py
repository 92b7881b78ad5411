"""Surveys and complaint categories every program starts with (SPEC sections 2 and 7)."""

SURVEYS = [
    {
        "code": "nps",
        "kind": "nps",
        "name": "NPS after a purchase",
        "name_ru": "NPS после покупки",
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
        "name_ru": "Удовлетворённость решением жалобы",
        "question_ru": "Насколько вы довольны тем, как мы решили ваш вопрос?",
        "question_en": "How satisfied are you with how we resolved your case?",
        "delay_days": 0,
        "cooldown_days": 0,
    },
    {
        "code": "churn",
        "kind": "churn",
        "name": "Why members stop buying",
        "name_ru": "Почему участники перестают покупать",
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
    """Create the default surveys and categories that do not exist yet (safe to run again).

    A default survey that has no Russian name yet gets it. Takes the model classes so that data
    migrations can pass their historical models (the first of which has no ``name_ru``).
    """
    columns = {field.name for field in survey_model._meta.get_fields()}
    for fields in SURVEYS:
        known = {name: value for name, value in fields.items() if name in columns}
        survey, created = survey_model.objects.get_or_create(code=fields["code"], defaults=known)
        if not created and "name_ru" in known and not survey.name_ru:
            survey.name_ru = known["name_ru"]
            survey.save(update_fields=["name_ru"])
    for code, name, name_ru, hours in CATEGORIES:
        category_model.objects.get_or_create(
            code=code, defaults={"name": name, "name_ru": name_ru, "sla_hours": hours}
        )
