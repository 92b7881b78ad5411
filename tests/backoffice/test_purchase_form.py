"""The back-office purchase form, as a store manager at the counter meets it."""

from django.urls import reverse

from loyalty import roles


def selected_store(response):
    return response.context["form"]["store"].value()


def test_a_manager_of_one_store_finds_it_already_chosen(client_as, manager, stores):
    response = client_as("manager").get(reverse("purchases:purchase-create"))
    assert response.status_code == 200
    assert selected_store(response) == stores["MSK-01"].pk
    assert f'<option value="{stores["MSK-01"].pk}" selected>' in response.text


def test_a_manager_of_two_stores_chooses_one(client, make_staff, stores):
    client.force_login(make_staff("anna", roles.STORE_MANAGER, ["MSK-01", "SPB-01"]))
    response = client.get(reverse("purchases:purchase-create"))
    assert response.status_code == 200
    assert selected_store(response) is None
    store_select = response.text.split('name="store"')[1].split("</select>")[0]
    assert store_select.count(" selected>") == 1
    assert '<option value="" selected>' in store_select
