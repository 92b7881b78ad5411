"""Built-in message texts, per purpose, channel and language; a MessageTemplate row overrides one.

Kept in code (not only in a data migration) so that a fresh database, and every test, has them.
Fields come from ``messaging.services.message_fields``.
"""

# (purpose, language) -> (e-mail subject, e-mail text, SMS text)
DEFAULT_TEXTS = {
    ("expiry_reminder", "ru"): (
        "{{ points }} баллов скоро сгорят",
        "{{ first_name|default:'Здравствуйте' }}, {{ points }} баллов на вашей карте сгорят "
        "{{ expires_at|date:'j E' }}. Потратьте их при следующей покупке.\n"
        "Ваш баланс: {{ balance }} баллов.",
        "{{ points }} баллов сгорят {{ expires_at|date:'d.m' }}. Баланс: {{ balance }}.",
    ),
    ("expiry_reminder", "en"): (
        "{{ points }} points expire soon",
        "{{ first_name|default:'Hello' }}, {{ points }} points on your card expire on "
        "{{ expires_at|date:'j F' }}. Spend them on your next purchase.\n"
        "Your balance: {{ balance }} points.",
        "{{ points }} points expire on {{ expires_at|date:'d.m' }}. Balance: {{ balance }}.",
    ),
    ("birthday_offer", "ru"): (
        "С днём рождения! {{ points }} баллов в подарок",
        "{{ first_name|default:'Здравствуйте' }}, с днём рождения! Дарим {{ points }} баллов: "
        "они действуют до {{ expires_at|date:'j E' }}.\nВаш баланс: {{ balance }} баллов.",
        "С днём рождения! +{{ points }} баллов до {{ expires_at|date:'d.m' }}.",
    ),
    ("birthday_offer", "en"): (
        "Happy birthday! {{ points }} points for you",
        "{{ first_name|default:'Hello' }}, happy birthday! Here are {{ points }} points, valid "
        "until {{ expires_at|date:'j F' }}.\nYour balance: {{ balance }} points.",
        "Happy birthday! +{{ points }} points until {{ expires_at|date:'d.m' }}.",
    ),
    ("points_available", "ru"): (
        "Баллы доступны",
        "{{ first_name|default:'Здравствуйте' }}, {{ points }} баллов теперь можно тратить.\n"
        "Ваш баланс: {{ balance }} баллов.",
        "{{ points }} баллов доступны. Баланс: {{ balance }}.",
    ),
    ("points_available", "en"): (
        "Your points are available",
        "{{ first_name|default:'Hello' }}, {{ points }} points can now be spent.\n"
        "Your balance: {{ balance }} points.",
        "{{ points }} points available. Balance: {{ balance }}.",
    ),
    ("referral_reward", "ru"): (
        "Баллы за приглашение",
        "{{ first_name|default:'Здравствуйте' }}, вам начислено {{ points }} баллов за "
        "приглашение друга.\nВаш баланс: {{ balance }} баллов.",
        "+{{ points }} баллов за приглашение друга. Баланс: {{ balance }}.",
    ),
    ("referral_reward", "en"): (
        "Points for a referral",
        "{{ first_name|default:'Hello' }}, you received {{ points }} points for a referral.\n"
        "Your balance: {{ balance }} points.",
        "+{{ points }} points for a referral. Balance: {{ balance }}.",
    ),
    ("membership_joined", "ru"): (
        "Подписка «{{ plan }}» оформлена",
        "{{ first_name|default:'Здравствуйте' }}, подписка «{{ plan }}» действует до "
        "{{ period_end|date:'j E Y' }}.",
        "Подписка «{{ plan }}» до {{ period_end|date:'d.m.Y' }}.",
    ),
    ("membership_joined", "en"): (
        "Your {{ plan }} membership has started",
        "{{ first_name|default:'Hello' }}, your {{ plan }} membership runs until "
        "{{ period_end|date:'j F Y' }}.",
        "{{ plan }} membership until {{ period_end|date:'d.m.Y' }}.",
    ),
    ("membership_renewed", "ru"): (
        "Подписка «{{ plan }}» продлена",
        "{{ first_name|default:'Здравствуйте' }}, подписка «{{ plan }}» продлена до "
        "{{ period_end|date:'j E Y' }}.",
        "Подписка «{{ plan }}» продлена до {{ period_end|date:'d.m.Y' }}.",
    ),
    ("membership_renewed", "en"): (
        "Your {{ plan }} membership is renewed",
        "{{ first_name|default:'Hello' }}, your {{ plan }} membership is renewed until "
        "{{ period_end|date:'j F Y' }}.",
        "{{ plan }} membership renewed until {{ period_end|date:'d.m.Y' }}.",
    ),
    ("membership_lapsed", "ru"): (
        "Подписка «{{ plan }}» закончилась",
        "{{ first_name|default:'Здравствуйте' }}, подписка «{{ plan }}» закончилась. "
        "Оформите её снова, чтобы вернуть привилегии.",
        "Подписка «{{ plan }}» закончилась.",
    ),
    ("membership_lapsed", "en"): (
        "Your {{ plan }} membership has ended",
        "{{ first_name|default:'Hello' }}, your {{ plan }} membership has ended. "
        "Join again to get its benefits back.",
        "Your {{ plan }} membership has ended.",
    ),
    ("campaign", "ru"): ("{{ subject }}", "{{ text }}", "{{ text }}"),
    ("campaign", "en"): ("{{ subject }}", "{{ text }}", "{{ text }}"),
    # Survey invitations carry their subject and text, written in the member's language by
    # ``surveys.messages.survey_message`` for the survey's kind (NPS, its reminder, churn, CSAT).
    ("survey", "ru"): ("{{ subject }}", "{{ text }}", "{{ text }}"),
    ("survey", "en"): ("{{ subject }}", "{{ text }}", "{{ text }}"),
    ("csat_survey", "ru"): ("{{ subject }}", "{{ text }}", "{{ text }}"),
    ("csat_survey", "en"): ("{{ subject }}", "{{ text }}", "{{ text }}"),
    # The link to the member's own page (members.self_service), asked for a moment ago.
    ("sign_in_link", "ru"): (
        "Вход в личный кабинет",
        "{{ first_name|default:'Здравствуйте' }}, вот ссылка для входа в личный кабинет "
        "программы лояльности:\n{{ link }}\n"
        "Она действует до {{ expires_at|time:'H:i' }} и только один раз. Если вы не просили "
        "ссылку, ничего не делайте: без неё в кабинет не войти.",
        "Вход в личный кабинет: {{ link }} (до {{ expires_at|time:'H:i' }}, один раз).",
    ),
    ("sign_in_link", "en"): (
        "Sign in to your account",
        "{{ first_name|default:'Hello' }}, here is your link to your loyalty account:\n"
        "{{ link }}\nIt works until {{ expires_at|time:'H:i' }}, once. If you did not ask for "
        "it, do nothing: no one can sign in without it.",
        "Sign in to your account: {{ link }} (until {{ expires_at|time:'H:i' }}, once).",
    ),
}
