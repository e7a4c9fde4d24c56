"""Labels in admin: scoped to the staff user's accounts like every other admin, shared labels
read-only for anyone but a superuser, names unique per scope whatever their case."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import Account
from inbox.labels.models import Label

PERMISSIONS = ["view_label", "add_label", "change_label", "delete_label"]


@pytest.fixture
def other(db) -> Account:
    return Account.objects.create(name="Other shop", app_id="wx_other_admin", token="t")


@pytest.fixture
def staff_client(client, django_user_model, synced):
    user = django_user_model.objects.create_user("agent", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=PERMISSIONS))
    synced.members.add(user)
    client.force_login(user)
    return client


@pytest.fixture
def labels(synced, other) -> dict[str, Label]:
    return {
        "shared": Label.objects.create(name="退款"),
        "own": Label.objects.create(name="VIP", account=synced),
        "foreign": Label.objects.create(name="投诉", account=other),
    }


def test_staff_see_their_accounts_and_the_shared_labels(staff_client, labels):
    response = staff_client.get(reverse("admin:labels_label_changelist"))
    assert response.status_code == 200
    shown = set(response.context["cl"].result_list)
    assert shown == {labels["shared"], labels["own"]}
    foreign = reverse("admin:labels_label_change", args=[labels["foreign"].pk])
    assert staff_client.get(foreign).status_code == 404


def test_shared_labels_are_read_only_for_staff(staff_client, labels):
    url = reverse("admin:labels_label_change", args=[labels["shared"].pk])
    assert not staff_client.get(url).context["has_change_permission"]
    assert staff_client.post(url, {"name": "x", "colour": "red"}).status_code == 403
    delete = reverse("admin:labels_label_delete", args=[labels["shared"].pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert Label.objects.get(pk=labels["shared"].pk).name == "退款"


def test_staff_add_labels_to_their_own_accounts_only(staff_client, synced, other, labels):
    add = reverse("admin:labels_label_add")
    for account in (other.pk, ""):
        response = staff_client.post(add, {"name": "加急", "colour": "red", "account": account})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["account"]
    response = staff_client.post(add, {"name": "加急", "colour": "red", "account": synced.pk})
    assert response.status_code == 302
    assert Label.objects.get(name="加急").account == synced


@pytest.mark.parametrize("name", ["vip", "VIP", "退款"])
def test_names_are_unique_per_scope_whatever_their_case(staff_client, synced, labels, name):
    add = reverse("admin:labels_label_add")
    response = staff_client.post(add, {"name": name, "colour": "red", "account": synced.pk})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Label.objects.filter(name__iexact=name).count() == 1
