# Account tokens encrypted at rest (accounts.crypto). The column becomes a plain text column
# first, so the data step reads and writes the stored strings as they are; then the field turns
# into the encrypting one (no schema change: both are text).

from cryptography.fernet import InvalidToken
from django.db import migrations, models

import accounts.crypto


def encrypt_tokens(apps, schema_editor):
    Account = apps.get_model("accounts", "Account")
    for pk, token in Account.objects.values_list("pk", "token"):
        try:
            accounts.crypto.decrypt(token)
            continue  # already encrypted: a rerun changes nothing
        except (InvalidToken, UnicodeError):
            pass
        Account.objects.filter(pk=pk).update(token=accounts.crypto.encrypt(token))


def decrypt_tokens(apps, schema_editor):
    Account = apps.get_model("accounts", "Account")
    for pk, token in Account.objects.values_list("pk", "token"):
        Account.objects.filter(pk=pk).update(token=accounts.crypto.decrypt(token))


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_account_outage"),
    ]

    operations = [
        migrations.AlterField(
            model_name="account",
            name="token",
            field=models.TextField(verbose_name="token"),
        ),
        migrations.RunPython(encrypt_tokens, decrypt_tokens, elidable=False),
        migrations.AlterField(
            model_name="account",
            name="token",
            field=accounts.crypto.EncryptedTextField(verbose_name="token"),
        ),
    ]
