"""The public answer page, the NPS dashboard and survey settings."""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache

from loyalty.access import require
from loyalty.engine.administration import save_with_audit
from loyalty.engine.db import replica_reads
from loyalty.engine.errors import LoyaltyError
from members.queries import sees_all_stores, stores_for
from surveys import queries
from surveys.models import ChurnReason, NpsGroup, Survey, SurveyResponse, nps_group
from surveys.services import answer_survey, find_invitation, link_problem


class AnswerForm(forms.Form):
    score = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(11)],
        coerce=int,
        required=False,
        widget=forms.RadioSelect,
    )
    reason = forms.ChoiceField(
        choices=ChurnReason.choices, required=False, widget=forms.RadioSelect
    )
    comment = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 4})
    )


@never_cache
def answer(request, token):
    """The member's page: no login, the member's language, works once."""
    invitation = find_invitation(token)
    language = invitation.language if invitation else translation.get_language()
    with translation.override(language):
        now = timezone.now()
        problem = link_problem(invitation, now)
        if problem:
            status = {"survey_link_used": 200}.get(problem.code, problem.status_code)
            return render(
                request,
                "surveys/answer_closed.html",
                {"problem": problem, "language": language},
                status=status,
            )
        survey = invitation.survey
        form = AnswerForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                answer_survey(
                    token=token,
                    score=form.cleaned_data["score"] if form.cleaned_data["score"] != "" else None,
                    reason=form.cleaned_data["reason"],
                    comment=form.cleaned_data["comment"],
                )
            except LoyaltyError as error:
                if error.code.startswith("survey_link"):
                    return render(
                        request,
                        "surveys/answer_closed.html",
                        {"problem": error, "language": language},
                        status=200,
                    )
                for field, problems in error.fields.items():
                    for text in problems:
                        form.add_error(field if field in form.fields else None, text)
            else:
                return render(
                    request,
                    "surveys/answer_thanks.html",
                    {"language": language, "member": invitation.member},
                )
        return render(
            request,
            "surveys/answer.html",
            {
                "form": form,
                "survey": survey,
                "question": survey.question(language),
                "member": invitation.member,
                "language": language,
                "token": token,
                "scores": range(11),
                "reasons": ChurnReason.choices,
            },
        )


def follow_up(request, token):
    """The follow-up question for the score just chosen (HTMX, on the public page)."""
    invitation = find_invitation(token)
    if invitation is None:
        return render(request, "surveys/answer.html#follow-up", {"text": ""})
    try:
        score = int(request.GET.get("score", ""))
    except ValueError:
        score = None
    language = invitation.language
    text = ""
    if score is not None and 0 <= score <= 10:
        text = invitation.survey.follow_up(nps_group(score), language)
    with translation.override(language):
        return render(request, "surveys/answer.html#follow-up", {"text": text})


def _period(request):
    try:
        days = int(request.GET.get("days", "365"))
    except ValueError:
        days = 365
    return max(7, min(days, 3650))


@require("loyalty.view_analytics")
def nps_dashboard(request):
    with replica_reads():
        return _nps_dashboard(request)


def _nps_dashboard(request):
    now = timezone.now()
    days = _period(request)
    stores = None if sees_all_stores(request.user) else stores_for(request.user)
    responses = queries.nps_responses(since=now - timedelta(days=days), stores=stores)
    summary = queries.nps_summary(responses)
    months = queries.nps_by_month(responses)
    group = request.GET.get("group", "")
    comments = (
        responses.exclude(comment="").select_related("member", "store").order_by("-answered_at")
    )
    if group in NpsGroup.values:
        comments = comments.filter(group=group)
    chart = {
        "labels": [row["month"].strftime("%Y-%m") for row in months],
        "nps": [row["nps"] for row in months],
        "low": [row["low"] for row in months],
        "high": [row["high"] for row in months],
        "label": str(_("NPS")),
    }
    return render(
        request,
        "surveys/nps_dashboard.html",
        {
            "summary": summary,
            "months": months,
            "by_store": queries.nps_by(responses, "store"),
            "by_tier": queries.nps_by(responses, "tier"),
            "by_channel": queries.nps_by(responses, "channel"),
            "comments": Paginator(comments, 20).get_page(request.GET.get("page")),
            "group": group,
            "groups": NpsGroup.choices,
            "days": days,
            "chart": chart,
            "churn": SurveyResponse.objects.filter(survey__kind="churn")
            .values("reason")
            .order_by("reason")
            .annotate(n=Count("id")),
            "reason_labels": dict(ChurnReason.choices),
        },
    )


class SurveyForm(forms.ModelForm):
    class Meta:
        model = Survey
        fields = [
            "name",
            "name_ru",
            "question_ru",
            "question_en",
            "follow_up_detractor_ru",
            "follow_up_detractor_en",
            "follow_up_passive_ru",
            "follow_up_passive_en",
            "follow_up_promoter_ru",
            "follow_up_promoter_en",
            "delay_days",
            "sampling_rate",
            "cooldown_days",
            "reminder_after_days",
            "link_valid_days",
            "is_active",
        ]
        labels = {
            "name": gettext_lazy("Name in English"),
            "name_ru": gettext_lazy("Name in Russian"),
            "follow_up_detractor_ru": gettext_lazy("Follow-up for detractors (Russian)"),
            "follow_up_detractor_en": gettext_lazy("Follow-up for detractors (English)"),
            "follow_up_passive_ru": gettext_lazy("Follow-up for passives (Russian)"),
            "follow_up_passive_en": gettext_lazy("Follow-up for passives (English)"),
            "follow_up_promoter_ru": gettext_lazy("Follow-up for promoters (Russian)"),
            "follow_up_promoter_en": gettext_lazy("Follow-up for promoters (English)"),
        }


@require("loyalty.manage_surveys")
def survey_list(request):
    surveys = Survey.objects.annotate(
        answers=Count("responses", distinct=True),
    ).order_by("code")
    return render(request, "surveys/survey_list.html", {"surveys": surveys})


@require("loyalty.manage_surveys")
def survey_edit(request, pk):
    survey = get_object_or_404(Survey, pk=pk)
    form = SurveyForm(request.POST or None, instance=survey)
    if request.method == "POST" and form.is_valid():
        save_with_audit(form=form, staff=request.user, action="survey")
        messages.success(request, _("Survey saved."))
        return redirect("surveys:survey-list")
    return render(
        request,
        "loyalty/form_page.html",
        {
            "form": form,
            "title": str(survey),
            "back": "/surveys/definitions/",
        },
    )


class SendForm(forms.Form):
    survey = forms.ModelChoiceField(
        label=gettext_lazy("Survey"), queryset=Survey.objects.filter(is_active=True)
    )
    store = forms.ChoiceField(label=gettext_lazy("Enrolled in store"), required=False)
    tier = forms.ChoiceField(label=gettext_lazy("Tier"), required=False)
    lapsed_days = forms.IntegerField(
        label=gettext_lazy("Lapsed: no purchase for at least this many days"),
        required=False,
        min_value=1,
        max_value=3650,
    )

    def __init__(self, *args, **kwargs):
        from loyalty.models import Store, Tier

        super().__init__(*args, **kwargs)
        everyone = [("", _("All"))]
        self.fields["store"].choices = everyone + [
            (store.code, f"{store.code} · {store.name}") for store in Store.objects.all()
        ]
        self.fields["tier"].choices = everyone + [(t.code, t.display_name()) for t in Tier.ladder()]

    def segment(self):
        data = self.cleaned_data
        return {"store": data["store"], "tier": data["tier"], "lapsed_days": data["lapsed_days"]}


@require("loyalty.manage_surveys")
def survey_send(request):
    """Send a survey to a segment: a live count while choosing, then a Celery send."""
    from loyalty.taskqueue import delay_on_commit
    from surveys.services import segment_members, start_survey_send
    from surveys.tasks import send_survey

    form = SendForm(request.POST or request.GET or None)
    count = None
    if form.is_bound and form.is_valid():
        count = segment_members(now=timezone.now(), **form.segment()).count()
        if request.method == "POST":
            send = start_survey_send(
                survey=form.cleaned_data["survey"], filters=form.segment(), staff=request.user
            )
            if delay_on_commit(send_survey, send.pk, record=send).waiting:
                messages.warning(
                    request,
                    _(
                        "The task queue is unreachable just now: the send is saved and starts "
                        "by itself once the queue is back."
                    ),
                )
            return redirect("surveys:survey-send-detail", pk=send.pk)
    template = "surveys/survey_send.html"
    if request.htmx and request.method == "GET":
        template += "#count"
    return render(request, template, {"form": form, "count": count})


@require("loyalty.manage_surveys")
def survey_send_detail(request, pk):
    from surveys.models import SurveySend

    send = get_object_or_404(SurveySend.objects.select_related("survey"), pk=pk)
    template = "surveys/survey_send_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, {"send": send})
